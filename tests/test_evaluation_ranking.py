"""The Evaluator's core (components/evaluator/ranking.py) on small arrays and a small
SavedModel with the served model's signatures: no pipeline run, no TFX."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components.evaluator import ranking
from data import features
from modules import metrics, serving
from shared import names

_QUERY = [tf.TensorSpec([None], tf.string, name=features.USER_ID),
          tf.TensorSpec([None], tf.int64, name=features.TIMESTAMP)]
_WITH_FEATURES = _QUERY + [tf.TensorSpec([None], dtype, name=name)
                           for name, (dtype, _) in serving.USER_FEATURE_SPECS.items()]


class TableModel(tf.Module):
  """A query tower as a table: each known user's embedding, the unknown user's for any other
  id; with features, a male user's embedding moves by `male_shift`."""

  def __init__(self, users, embeddings, unknown, male_shift):
    super().__init__()
    self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(users), tf.range(len(users), dtype=tf.int64)), default_value=-1)
    self.embeddings = tf.constant(np.vstack([embeddings, unknown]), tf.float32)
    self.male_shift = tf.constant(male_shift, tf.float32)

  def _by_id(self, user_id):
    index = self.table.lookup(user_id)
    return tf.gather(self.embeddings, tf.where(index < 0, tf.shape(self.embeddings,
                                                                   tf.int64)[0] - 1, index))

  @tf.function(input_signature=_QUERY)
  def embed(self, user_id, timestamp):
    return {'embedding': self._by_id(user_id)}

  @tf.function(input_signature=_WITH_FEATURES)
  def embed_with_features(self, user_id, timestamp, bucketized_user_age, user_gender,
                          user_occupation_text, user_zip_code):
    male = tf.cast(tf.equal(user_gender, 1), tf.float32)[:, None]
    return {'embedding': self._by_id(user_id) + male * self.male_shift}


def save_model(directory, titles, candidates, users, embeddings, unknown,
               male_shift=None, with_features=True) -> ranking.ServedModel:
  """A SavedModel laid out as serving.export lays one out, loaded as the Evaluator loads it."""
  module = TableModel(users, np.array(embeddings, np.float32), np.array(unknown, np.float32),
                      np.zeros(len(unknown)) if male_shift is None else male_shift)
  signatures = {'embed': module.embed}
  if with_features:
    signatures['embed_with_features'] = module.embed_with_features
  tf.saved_model.save(module, str(directory), signatures=signatures)
  extra = os.path.join(str(directory), serving.EXTRA_DIR)
  os.makedirs(extra)
  with open(os.path.join(extra, serving.TITLES_FILE), 'w') as file:
    json.dump(titles, file)
  np.save(os.path.join(extra, serving.EMBEDDINGS_FILE), np.array(candidates, np.float32))
  return ranking.ServedModel(str(directory))


def column(*values):
  return np.array(values, dtype=object if isinstance(values[0], bytes) else None)


# Four titles; a user's scores are their embedding's products with these.
TITLES = ['A', 'B', 'C', 'D']
CANDIDATES = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0]]
# u1 scores A 3, B 2, C 1, D 2.5; u2 A 0, B 1, C 2, D 0.5; the unknown user ties them all.
USERS, EMBEDDINGS, UNKNOWN = [b'u1', b'u2'], [[3, 2, 1], [0, 1, 2]], [1, 1, 1]
# Training: u1 rated A and D, u2 C and D, u3 B and D: D 3 ratings, then A, B, C (1 each).
TRAIN = {features.USER_ID: column(b'u1', b'u1', b'u2', b'u2', b'u3', b'u3'),
         features.MOVIE_TITLE: column(b'A', b'D', b'C', b'D', b'B', b'D')}
# u1 holds out B and a title outside the catalog, u2 A, u9 (never in training) C.
EVAL = {features.USER_ID: column(b'u1', b'u2', b'u9', b'u1'),
        features.MOVIE_TITLE: column(b'B', b'A', b'C', b'Z'),
        features.TIMESTAMP: column(10, 20, 30, 40)}


@pytest.fixture(scope='module')
def model(tmp_path_factory):
  return save_model(tmp_path_factory.mktemp('model'), TITLES, CANDIDATES, USERS, EMBEDDINGS,
                    UNKNOWN)


@pytest.fixture(scope='module')
def baseline(tmp_path_factory):
  """Another model, whose catalog has no B: u1's held-out B is a miss under it."""
  return save_model(tmp_path_factory.mktemp('baseline'), ['A', 'C', 'D'],
                    [[1, 0, 0], [0, 0, 1], [0.5, 0.5, 0]], USERS, EMBEDDINGS, UNKNOWN)


def at_each_k(values):
  """Top-K accuracy of ranks at each K (with four titles, any K from 5 on hits all but the
  titles outside the catalog)."""
  return {str(k): float(np.mean(np.array(values) < k)) for k in names.TOP_KS}


# The user features of the same ratings, as ExampleGen writes them: u1 and u9 are men.
USER_FEATURES = {features.USER_GENDER: column(1, 0, 1, 1),
                 features.BUCKETIZED_USER_AGE: np.array([18.0, 56.0, 1.0, 18.0], np.float32),
                 features.USER_OCCUPATION_TEXT: column(b'writer', b'artist', b'doctor', b'writer'),
                 features.USER_ZIP_CODE: column(b'1', b'2', b'3', b'1')}


def test_each_eval_rating_is_labelled_by_its_slices_and_its_users_training_activity():
  eval_ = {**EVAL, **USER_FEATURES}
  assert ranking.eval_features([*eval_, 'movie_genres']) == set(eval_)  # only what it uses
  assert ranking.eval_features(EVAL) == set(EVAL)  # a release without user features
  ratings = ranking.EvalRatings.from_examples(TRAIN, eval_)
  assert {name: labels.tolist() for name, labels in ratings.slices.items()} == {
      features.USER_GENDER: ['M', 'F', 'M', 'M'],
      features.BUCKETIZED_USER_AGE: ['18-24', '56+', '1-17', '18-24'],
      features.USER_OCCUPATION_TEXT: ['writer', 'artist', 'doctor', 'writer'],
      ranking.ACTIVITY_SLICE: ['1-19', '1-19', '0', '1-19']}
  assert set(ratings.user_features) == set(serving.USER_FEATURE_SPECS)  # what a request has
  assert ratings.unseen_users().tolist() == [False, False, True, False]
  subset = ratings.subset(ratings.unseen_users())
  assert subset.title.tolist() == [b'C'] and subset.slices[features.USER_GENDER].tolist() == [
      'M'] and subset.user_features[features.USER_ZIP_CODE].tolist() == [b'3']
  assert len(subset.train_title) == len(TRAIN[features.MOVIE_TITLE])  # every training rating


def test_the_report_ranks_the_model_the_popularity_list_and_the_unknown_user(model):
  report = ranking.evaluate(ranking.EvalRatings.from_examples(TRAIN, EVAL), model)
  assert (report['num_eval_ratings'], report['num_eval_users'],
          report['num_candidates']) == (4, 3, 4)
  # Ranks of B, A, C, Z. Model: u1's A and D score above B; u2's C, B and D above A; u9 is
  # unknown to the model and ties every title; Z is a miss. Seen removed: u1's A and D,
  # u2's C and D go. Popularity (D, A, B, C): B 2, A 1, C 3; without the seen, B 0, A 0.
  miss = metrics.MISS
  assert report['top_k'] == {'model': at_each_k([2, 3, 0, miss]),
                             'popularity': at_each_k([2, 1, 3, miss]),
                             'unknown_user': at_each_k([0, 0, 0, miss])}
  assert report['top_k']['model'] == {'1': 0.25, '5': 0.75, '10': 0.75, '50': 0.75,
                                      '100': 0.75}
  assert report['top_k_unseen'] == {'model': at_each_k([0, 1, 0, miss]),
                                    'popularity': at_each_k([0, 0, 3, miss]),
                                    'unknown_user': at_each_k([0, 0, 0, miss])}
  # Per user, from the ranks seen removed, at K=10: u1 holds out {B, Z}, u2 {A}, u9 {C}.
  # Model: u1 hits B first (recall 1/2, NDCG 1 over the ideal of two hits), u2 A second,
  # u9 C first. Popularity: u1 as the model, u2 A first, u9 C fourth.
  half, second, fourth = 1 / (1 + 1 / np.log2(3)), 1 / np.log2(3), 1 / np.log2(5)
  assert report['per_user_unseen'] == {'k': 10, 'rankings': {
      'model': pytest.approx({'recall': 2.5 / 3, 'ndcg': (half + second + 1) / 3}),
      'popularity': pytest.approx({'recall': 2.5 / 3, 'ndcg': (half + 1 + fourth) / 3}),
      'unknown_user': pytest.approx({'recall': 2.5 / 3, 'ndcg': (half + 1 + 1) / 3})}}
  assert report['slices'] == {ranking.ACTIVITY_SLICE: [
      {'value': '0', 'count': 1, 'model': 1.0, 'model_unseen': 1.0, 'popularity': 1.0,
       'popularity_unseen': 1.0},
      {'value': '1-19', 'count': 3, 'model': 2 / 3, 'model_unseen': 2 / 3,
       'popularity': 2 / 3, 'popularity_unseen': 2 / 3}]}
  # u9 never rated in training: its rating again, alone (no features: the model by id).
  assert report['cold_start'] == {'num_ratings': 1, 'num_users': 1, 'top_k': {
      'model_with_features': at_each_k([0]), 'mean_user': at_each_k([0]),
      'popularity': at_each_k([3])}}


def test_known_users_are_queried_with_their_features_when_the_model_takes_them(tmp_path):
  # With features, a male user moves towards C: u1 (male) then ranks C first, B last.
  shift = (0, 0, 10)
  ratings = ranking.EvalRatings.from_examples(TRAIN, {**EVAL, **USER_FEATURES})
  with_features = save_model(tmp_path / 'features', TITLES, CANDIDATES, USERS, EMBEDDINGS,
                             UNKNOWN, male_shift=shift)
  without = save_model(tmp_path / 'no_features', TITLES, CANDIDATES, USERS, EMBEDDINGS,
                       UNKNOWN, male_shift=shift, with_features=False)
  indexes = ranking.catalog_indexes(with_features, ratings)
  listed, _ = ranking.rank_model(with_features, ratings, indexes)
  assert listed.tolist() == [3, 3, 0, metrics.MISS]  # u9 as unknown + male: C first
  assert ranking.rank_model(with_features, ratings, indexes, with_features=False)[0].tolist() == (
      ranking.rank_model(without, ratings, indexes)[0].tolist()) == [2, 3, 0, metrics.MISS]
  cold = ranking.evaluate(ratings, with_features)['cold_start']['top_k']
  assert cold['model_with_features'] == at_each_k([0]) and cold['mean_user'] == at_each_k([0])


def test_the_cold_start_indexes_are_the_whole_splits_rows(model):
  ratings = ranking.EvalRatings.from_examples(TRAIN, EVAL)
  rows = np.array([True, False, True, True])
  whole = ranking.catalog_indexes(model, ratings).subset(rows)
  again = ranking.catalog_indexes(model, ratings.subset(rows))
  np.testing.assert_array_equal(whole.truth, again.truth)
  assert [s.tolist() for s in whole.seen] == [s.tolist() for s in again.seen] == [
      [0, 3], [], [0, 3]]
  np.testing.assert_array_equal(whole.train_counts, again.train_counts)
  assert whole.train_counts.tolist() == [1, 1, 1, 3]


def test_a_baseline_is_ranked_on_the_same_ratings_with_its_own_catalog(model, baseline):
  report = ranking.evaluate(ranking.EvalRatings.from_examples(TRAIN, EVAL), model, baseline)
  assert report['top_k']['baseline_model'] == at_each_k([metrics.MISS, 2, 0, metrics.MISS])
  # Seen removed: u1's B and Z are misses, u2's A (C and D seen) and u9's C first.
  assert report['per_user_unseen']['rankings']['baseline_model'] == pytest.approx(
      {'recall': 2 / 3, 'ndcg': 2 / 3})
  assert report['num_candidates'] == 4  # the model's catalog


def test_the_ranks_agree_with_scoring_every_title_by_brute_force(tmp_path):
  rng = np.random.default_rng(7)
  titles = [f'title {i}' for i in range(150)]  # more titles than K=100
  candidates = rng.normal(size=(150, 4)).astype(np.float32)
  users = [f'u{i}'.encode() for i in range(30)]
  embeddings = rng.normal(size=(30, 4)).astype(np.float32)
  model = save_model(tmp_path / 'model', titles, candidates, users, embeddings, [0, 0, 0, 0],
                     with_features=False)
  train = {features.USER_ID: rng.choice(users, 400),
           features.MOVIE_TITLE: np.array([t.encode() for t in rng.choice(titles, 400)],
                                          dtype=object)}
  eval_users = rng.choice(users, 200)
  truth = rng.integers(0, 150, 200)
  ratings = ranking.EvalRatings.from_examples(train, {
      features.USER_ID: eval_users, features.TIMESTAMP: np.arange(200),
      features.MOVIE_TITLE: np.array([titles[i].encode() for i in truth], dtype=object)})
  report = ranking.evaluate(ratings, model)
  scores = embeddings[[users.index(u) for u in eval_users]] @ candidates.T
  listed, unseen = [], []
  for row, user in enumerate(eval_users):
    above = scores[row] > scores[row, truth[row]]
    seen = {titles.index(t.decode()) for u, t in zip(*train.values()) if u == user}
    listed.append(above.sum())
    unseen.append(sum(above[i] for i in range(150) if i not in seen or i == truth[row]))
  assert report['top_k']['model'] == at_each_k(listed)
  assert report['top_k_unseen']['model'] == at_each_k(unseen)
  assert 0 < report['top_k']['model'][names.GATE_KEY] < 1  # K=100 is not every title


def test_the_gate_judges_the_gate_ks_figures_and_the_verdict_completes_the_report(model,
                                                                                   baseline):
  report = ranking.evaluate(ranking.EvalRatings.from_examples(TRAIN, EVAL), model, baseline)
  # At K=100 the model and the popularity list hit 0.75, the baseline 0.5.
  checks = ranking.gate_checks(report, min_top100=0.7, min_lift=1.0, max_regression=0.1,
                               baseline_id=3)
  assert [(c.name, c.passed, c.value, c.threshold) for c in checks] == [
      ('minimum', True, 0.75, 0.7), ('beats_popularity', False, 0.75, 0.75),
      ('no_regression', True, 0.75, pytest.approx(0.4))]
  assert not ranking.blessed(checks) and ranking.blessed(checks[:1])
  assert 'artifact 3' in checks[2].explanation
  assert ranking.gate_summary(checks).splitlines()[-1] == (
      'Not blessed (beats_popularity failed): the Pusher ships nothing.')
  model_artifact, baseline_artifact = {'artifact_id': 5, 'uri': '/m'}, {'artifact_id': 3,
                                                                        'uri': '/b'}
  evaluation = ranking.with_verdict(report, checks, model_artifact, baseline_artifact)
  assert list(evaluation) == [*report, 'model', 'baseline_model', 'gate']
  assert evaluation['gate']['blessed'] is False
  assert evaluation['gate']['checks'][1] == {
      'name': 'beats_popularity', 'passed': False, 'value': 0.75, 'threshold': 0.75,
      'explanation': checks[1].explanation}
  assert json.loads(json.dumps(evaluation)) == evaluation  # what evaluation.json holds
  assert 'K=100' in ranking.summary(evaluation) and 'Recall@10' in ranking.summary(evaluation)


def test_the_eval_sample_is_seeded_reproducible_and_keeps_every_training_rating():
  many = {name: np.concatenate([values] * 25) for name, values in EVAL.items()}  # 100 ratings
  ratings = ranking.EvalRatings.from_examples(TRAIN, many)
  sampled, recorded = ranking.eval_sample(ratings, 10, seed=7)
  again, _ = ranking.eval_sample(ratings, 10, seed=7)
  other, _ = ranking.eval_sample(ratings, 10, seed=8)
  assert recorded == {'ratings': 10, 'of': 100, 'seed': 7}
  assert len(sampled.title) == 10 == len(sampled.slices[ranking.ACTIVITY_SLICE])
  assert sampled.timestamp.tolist() == again.timestamp.tolist()
  assert sorted(sampled.timestamp.tolist()) != sorted(other.timestamp.tolist())
  assert len(sampled.train_title) == len(TRAIN[features.MOVIE_TITLE])
  # A sample no smaller than the split, or none asked for: every eval rating.
  for count in (0, 100, 1_000):
    whole, recorded = ranking.eval_sample(ratings, count, seed=7)
    assert whole is ratings and recorded == {'ratings': 100, 'of': 100, 'seed': None}


def test_the_model_and_its_baseline_are_ranked_on_the_same_sample(model, baseline):
  many = {name: np.concatenate([values] * 25) for name, values in EVAL.items()}
  sampled, _ = ranking.eval_sample(ranking.EvalRatings.from_examples(TRAIN, many), 12, seed=1)
  report = ranking.evaluate(sampled, model, baseline)
  assert report['num_eval_ratings'] == 12
  alone = ranking.evaluate(sampled, baseline)  # the baseline as the model, on that sample
  assert report['top_k']['baseline_model'] == alone['top_k']['model']


def test_the_standard_error_of_a_top_k_figure_is_binomial():
  assert ranking.standard_error(0.2, 250_000) == pytest.approx(0.0008)
  assert ranking.standard_error(0.5, 100) == pytest.approx(0.05)
  assert ranking.standard_error(0.0, 100) == 0.0
