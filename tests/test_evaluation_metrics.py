"""The Evaluator's arithmetic: ranks, seen-title removal, the popularity list, slices, gate."""
import numpy as np
import pytest

from components.evaluator import gate, metrics
from modules import training


def ranks(scores, truth, seen=None):
  scores = np.array(scores, np.float32)
  if seen is not None:
    seen_rows = np.empty(len(seen), dtype=object)
    seen_rows[:] = [np.array(s, np.int64) for s in seen]
    seen = seen_rows
  return metrics.ranks_of_truth(lambda rows: scores[rows], np.array(truth), seen,
                                chunk=2).tolist()


def test_a_rank_counts_the_titles_scoring_strictly_higher():
  scores = [[0.9, 0.5, 0.1, 0.7],
            [0.2, 0.2, 0.2, 0.3],  # ties count in the truth's favour
            [0.1, 0.2, 0.3, 0.4]]
  assert ranks(scores, [1, 0, 3]) == [2, 1, 0]


def test_seen_titles_are_removed_before_ranking_but_never_the_truth():
  scores = [[0.9, 0.5, 0.1, 0.7], [0.9, 0.5, 0.1, 0.7]]
  assert ranks(scores, [1, 1], seen=[[0, 3], [1, 2]]) == [0, 2]


def test_a_title_outside_the_catalog_is_a_miss_at_every_k():
  ranked = ranks([[0.1, 0.2], [0.1, 0.2]], [-1, 0])
  assert ranked == [metrics.MISS, 1]
  assert metrics.top_k(np.array(ranked), ks=(1, 2, 100)) == {'1': 0.0, '2': 0.5, '100': 0.5}


def test_model_ranks_match_the_trainers_validation():
  rng = np.random.default_rng(0)
  queries, candidates = rng.normal(size=(50, 8)), rng.normal(size=(30, 8))
  truth = rng.integers(0, 30, 50)
  ranked = metrics.ranks_of_truth(metrics.embedding_scores(queries, candidates), truth,
                                  chunk=7)
  from modules import model
  assert metrics.top_k(ranked, (1, 5, 10)) == {
      str(k): v for k, v in model.top_k_accuracy(queries, truth, candidates, (1, 5, 10)).items()}


def test_the_popularity_list_matches_the_trainers_baseline_ties_included():
  counts = np.array([5, 9, 5, 0, 9, 1])
  truth = np.array([0, 2, 4, 3, 5, 1])
  ranked = metrics.ranks_of_truth(metrics.popularity_scores(counts, len(truth)), truth,
                                  chunk=4)
  assert ranked.tolist() == [2, 3, 1, 5, 4, 0]  # order 1, 4, 0, 2, 5, 3
  assert metrics.top_k(ranked, (1, 3)) == {
      str(k): v for k, v in training.popularity_top_k(counts, truth, (1, 3)).items()}


@pytest.mark.parametrize('count, label', [(0, '0'), (1, '1-19'), (19, '1-19'), (20, '20-49'),
                                          (99, '50-99'), (199, '100-199'), (200, '200+')])
def test_activity_buckets(count, label):
  assert metrics.activity_bucket(count) == label


def test_slices_report_each_labels_count_and_accuracy_in_natural_order():
  labels = np.array(['100-199', '1-19', '20-49', '1-19'], dtype=object)
  rows = metrics.sliced_top_k(labels, {'model': np.array([0, 200, 99, 100])}, k=100)
  assert rows == [{'value': '1-19', 'count': 2, 'model': 0.0},
                  {'value': '20-49', 'count': 1, 'model': 1.0},
                  {'value': '100-199', 'count': 1, 'model': 1.0}]


def test_the_gate_passes_a_model_that_clears_every_check():
  checks = gate.checks(0.47, 0.30, min_top100=0.4, min_lift=1.1, max_regression=0.01,
                       baseline_top100=0.475, baseline_id=7)
  assert [c.passed for c in checks] == [True, True, True]
  assert checks[2].threshold == pytest.approx(0.465) and 'artifact 7' in checks[2].line()


@pytest.mark.parametrize('top100, popularity, baseline, failed', [
    (0.39, 0.30, None, ['minimum']),
    (0.45, 0.45, None, ['beats_popularity']),
    (0.45, 0.42, None, ['beats_popularity']),  # better, but not by the lift asked for
    (0.0, 0.0, None, ['beats_popularity']),  # nothing learnt on an empty split
    (0.45, 0.30, 0.47, ['no_regression']),
    (0.20, 0.30, 0.47, ['minimum', 'beats_popularity', 'no_regression']),
])
def test_each_check_fails_on_its_own(top100, popularity, baseline, failed):
  checks = gate.checks(top100, popularity, min_top100=0.4 if top100 else 0, min_lift=1.1,
                       max_regression=0.01, baseline_top100=baseline, baseline_id=1)
  assert [c.name for c in checks if not c.passed] == failed
  assert all(c.line().startswith('FAIL' if c.name in failed else 'PASS') for c in checks)


def test_without_a_blessed_model_the_regression_check_says_so():
  check = gate.checks(0.5, 0.3, 0.4, 1.1, 0.01)[2]
  assert check.passed and check.threshold is None and 'first' in check.explanation


def test_the_lift_floor_follows_the_popularity_list_of_the_same_split():
  # The same model quality means a pass on a release where popularity is weak and a
  # fail where it is strong: the floor is relative, not a number tuned on one release.
  assert gate.checks(0.25, 0.20, 0.0, 1.1, 0.01)[1].passed
  assert not gate.checks(0.25, 0.24, 0.0, 1.1, 0.01)[1].passed
  check = gate.checks(0.4674, 0.2963, 0.0, 1.1, 0.01)[1]
  assert check.threshold == pytest.approx(0.32593) and '1.58x' in check.line()
