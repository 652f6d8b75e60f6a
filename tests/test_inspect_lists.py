"""The inspector's lists (inspector/lists.py) on the small SavedModel and split of
tests/test_evaluation_ranking.py: no pipeline run."""
import numpy as np
import pytest

from components.evaluator import ranking
from data import features
from inspector import lists
from tests.test_evaluation_ranking import (CANDIDATES, EMBEDDINGS, EVAL, TITLES, TRAIN, UNKNOWN,
                                           USERS, column, save_model)

# When each training rating was made: u1 rated A, then D; u2 D, then C; u3 B, then D.
TRAIN_WITH_TIME = {**TRAIN, features.TIMESTAMP: column(5, 7, 9, 8, 1, 2)}


@pytest.fixture(scope='module')
def model(tmp_path_factory):
  return save_model(tmp_path_factory.mktemp('model'), TITLES, CANDIDATES, USERS, EMBEDDINGS,
                    UNKNOWN)


def test_each_list_leaves_out_the_users_training_titles_and_marks_the_held_out_hits(model):
  shown = lists.user_lists(TRAIN_WITH_TIME, ranking.EvalRatings.from_examples(TRAIN, EVAL),
                           model, [b'u1', b'u2', b'u9'])
  # u1 scores A 3, D 2.5, B 2, C 1 and rated A and D; u2 C 2, B 1, D 0.5, A 0 and rated C
  # and D; u9 is unknown to the model, which ties every title (catalog order). The
  # most-popular list is D (3 ratings), A, B, C.
  assert [(u['user_id'], u['model'], u['popularity']) for u in shown] == [
      ('u1', ['B', 'C'], ['B', 'C']),
      ('u2', ['B', 'A'], ['A', 'B']),
      ('u9', ['A', 'B', 'C', 'D'], ['D', 'A', 'B', 'C'])]
  assert [(u['held_out'], u['model_hits'], u['popularity_hits']) for u in shown] == [
      (['B', 'Z'], ['B'], ['B']), (['A'], ['A'], ['A']), (['C'], ['C'], ['C'])]
  assert [(u['num_train_ratings'], u['latest_rated']) for u in shown] == [
      (2, ['D', 'A']), (2, ['C', 'D']), (0, [])]


def test_the_users_are_those_asked_for_then_a_draw_the_seed_repeats():
  eval_users = np.array([b'u3', b'u1', b'u2', b'u1', b'u4'], dtype=object)
  assert lists.choose_users(eval_users, 9, seed=0, requested=[b'u4']) == [
      b'u4', b'u1', b'u2', b'u3']  # every user once, the asked-for first
  draws = {tuple(lists.choose_users(eval_users, 2, seed)) for seed in range(20)}
  assert len(draws) > 1 and all(len(set(draw)) == 2 for draw in draws)
  assert lists.choose_users(eval_users, 2, 7) == lists.choose_users(eval_users, 2, 7)
  with pytest.raises(ValueError, match='u8'):
    lists.choose_users(eval_users, 2, 0, requested=[b'u8'])
