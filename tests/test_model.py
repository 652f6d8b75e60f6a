"""The two-tower model on tiny inputs: shapes, the loss against TFRS', metrics by hand."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from modules import features as f
from modules import model as m
from modules import hparams, metrics
from shared import names

TITLES = ['Toy Story (1995)', 'Heat (1995)', "Schindler's List (1993)", '!!!']
TOKENS = ['toy', 'story', '1995', 'heat', 'schindlers', 'list', '1993']


def tutorial(**settings) -> hparams.TrainingConfig:
  """The tutorial's settings with those a test varies."""
  return hparams.preset('tutorial', **settings)


def towers(config):
  tf.keras.utils.set_random_seed(0)
  return (m.QueryTower(num_users=5, num_timestamp_buckets=11, config=config),
          m.CandidateTower(TITLES, TOKENS, config))


def batch(titles, candidate):
  n = len(titles)
  return {f.USER_INDEX: tf.constant(np.arange(n) % 5), f.TIMESTAMP_BUCKET: tf.constant(
      np.arange(n) % 11), f.TIMESTAMP_Z: tf.constant(np.linspace(-1, 1, n), tf.float32),
          f.MOVIE_TITLE: tf.constant(titles),
          f.TITLE_INDEX: candidate.title_lookup(tf.constant(titles))}


@pytest.mark.parametrize('layer_sizes', [[32], [64, 32], [128, 64, 32]])
def test_towers_embed_into_the_last_layer_width(layer_sizes):
  query, candidate = towers(tutorial(layer_sizes=layer_sizes))
  features = batch(TITLES, candidate)
  assert query(features).shape == (4, layer_sizes[-1])
  embeddings = candidate(tf.constant(TITLES + ['Unknown Movie (2001)']))
  assert embeddings.shape == (5, layer_sizes[-1])
  assert np.isfinite(embeddings.numpy()).all()  # '!!!' has no words; unknown titles embed


def test_dropout_acts_in_training_only():
  query, candidate = towers(tutorial(layer_sizes=[64, 32], dropout=0.5))
  titles = tf.constant(TITLES)
  assert sum(isinstance(layer, tf.keras.layers.Dropout) for layer in candidate.dense.layers) == 1
  np.testing.assert_array_equal(candidate(titles).numpy(), candidate(titles).numpy())
  assert not np.allclose(candidate(titles, training=True).numpy(), candidate(titles).numpy())
  features = batch(TITLES, candidate)
  assert not np.allclose(query(features, training=True).numpy(), query(features).numpy())


def test_training_lookup_by_index_embeds_as_the_string_path():
  _, candidate = towers(tutorial(layer_sizes=[64, 32]))
  by_string = candidate(tf.constant(TITLES)).numpy()
  by_index = candidate.embed_indices(candidate.title_lookup(tf.constant(TITLES))).numpy()
  np.testing.assert_allclose(by_index, by_string, rtol=1e-5, atol=1e-6)


def test_movie_features_add_genres_and_release_year():
  config = tutorial(layer_sizes=[16], movie_features=True)
  candidate = m.CandidateTower(TITLES, TOKENS, config, title_genres=[[3, 4], [0, 5], [7], []])
  by_string = candidate(tf.constant(TITLES)).numpy()
  by_index = candidate.embed_indices(candidate.title_lookup(tf.constant(TITLES))).numpy()
  np.testing.assert_allclose(by_index, by_string, rtol=1e-5, atol=1e-6)
  assert candidate.catalog_years.numpy().tolist() == [0, 2, 2, 1, 0]  # 1993 < 1995; '!!!'
  np.testing.assert_allclose(candidate.catalog_genres.numpy()[1, [3, 4]], [0.5, 0.5])
  with pytest.raises(ValueError, match='genres of every title'):
    m.CandidateTower(TITLES, TOKENS, config)


def test_user_features_join_the_query_tower_and_their_unknown_rows_become_the_average():
  buckets = {f.USER_OCCUPATION_INDEX: 4, f.USER_GENDER_INDEX: 3}  # 3 and 2 values + unknown
  features = {f.USER_INDEX: tf.constant([0, 1, 4]), f.TIMESTAMP_BUCKET: tf.constant([1, 2, 3]),
              f.TIMESTAMP_Z: tf.constant([0.0, 1.0, -1.0]),
              f.USER_OCCUPATION_INDEX: tf.constant([0, 2, 3]),
              f.USER_GENDER_INDEX: tf.constant([1, 0, 2])}
  off = m.QueryTower(5, 11, tutorial(layer_sizes=[8]), buckets)
  assert off.feature_names == (f.USER_INDEX, f.TIMESTAMP_BUCKET, f.TIMESTAMP_Z)
  on = m.QueryTower(5, 11, tutorial(layer_sizes=[8], user_features=True), buckets)
  assert set(on.feature_names) == set(off.feature_names) | set(buckets)
  assert on(features).shape == (3, 8)
  # Another occupation changes the query; the unknown rows never trained become the mean.
  moved = dict(features, **{f.USER_OCCUPATION_INDEX: tf.constant([1, 2, 3])})
  assert not np.allclose(on(moved)[0], on(features)[0])
  on.average_unknown()
  for embedding in [on.user_embedding, *on.feature_embeddings.values()]:
    table = embedding.embeddings.numpy()
    np.testing.assert_allclose(table[-1], table[:-1].mean(axis=0), rtol=1e-5, atol=1e-6)


def test_user_id_dropout_hides_ids_in_training_only_and_keeps_the_trained_unknown_row():
  config = tutorial(layer_sizes=[8], user_id_dropout=0.5)
  tower = m.QueryTower(5, 11, config)
  features = {f.USER_INDEX: tf.zeros([2000], tf.int64),
              f.TIMESTAMP_BUCKET: tf.zeros([2000], tf.int64),
              f.TIMESTAMP_Z: tf.zeros([2000])}
  served = tower(features, training=False).numpy()
  assert np.allclose(served, served[0])  # every query the same user: no id hidden
  trained = tower(features, training=True).numpy()
  unknown = tower(dict(features, **{f.USER_INDEX: tf.fill([2000], 4)})).numpy()[0]
  hidden = np.isclose(trained, unknown, atol=1e-6).all(axis=1)
  assert 0.4 < hidden.mean() < 0.6
  row = tower.user_embedding.embeddings[-1].numpy()
  tower.average_unknown()  # with dropout the unknown row is trained: kept as it is
  np.testing.assert_array_equal(tower.user_embedding.embeddings[-1].numpy(), row)


def test_release_year_is_the_last_four_digit_parenthesis():
  assert m.release_year('Toy Story (1995)') == 1995
  assert m.release_year('Land Before Time III: The Time of the Great Giving (1995) (V)') == 1995
  assert m.release_year('unknown') is None


def test_relu_on_every_layer_but_the_last():
  stack = m.dense_stack(tutorial(layer_sizes=[128, 64, 32]), 'stack')
  activations = [layer.activation.__name__ for layer in stack.layers]
  assert activations == ['relu', 'relu', 'linear']


def test_normalized_towers_embed_at_unit_length():
  query, candidate = towers(tutorial(layer_sizes=[64, 32], normalize=True))
  features = batch(TITLES, candidate)
  for embeddings in (query(features), candidate(tf.constant(TITLES)),
                     candidate.embed_indices(features[f.TITLE_INDEX])):
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, rtol=1e-5)


def test_sparse_loss_equals_tfrs_retrieval_loss():
  config = tutorial(layer_sizes=[16])
  query, candidate = towers(config)
  model = m.TwoTowerModel(query, candidate, config)
  features = batch(TITLES[:3] * 3, candidate)
  ours = model.compute_loss_value(features, training=False)
  theirs = tfrs.tasks.Retrieval()(query(features), candidate(features[f.MOVIE_TITLE]),
                                  compute_metrics=False)
  assert abs(float(ours) - float(theirs)) < 1e-3 * abs(float(theirs))


def test_logq_correction_and_accidental_hits_change_the_logits_as_defined():
  config = tutorial(layer_sizes=[8], logq_correction=True, remove_accidental_hits=True)
  query, candidate = towers(config)
  log_probability = tf.constant(np.log([1e-9, 0.5, 0.3, 0.1, 0.1]), tf.float32)
  model = m.TwoTowerModel(query, candidate, config, title_log_probability=log_probability)
  plain = m.TwoTowerModel(query, candidate, tutorial(layer_sizes=[8]))
  titles = [TITLES[0], TITLES[1], TITLES[0]]
  features = batch(titles, candidate)
  corrected = model.in_batch_logits(features, training=False)[0].numpy()
  raw = plain.in_batch_logits(features, training=False)[0].numpy()
  index = candidate.title_lookup(tf.constant(titles)).numpy()
  expected = raw - log_probability.numpy()[index][None, :]
  expected[0, 2] = expected[2, 0] = corrected[0, 2]  # same title off the diagonal: masked
  np.testing.assert_allclose(corrected, expected, rtol=1e-5)
  assert corrected[0, 2] < -1e8 and corrected[2, 0] < -1e8


def test_unique_candidates_give_one_column_per_distinct_title():
  config = tutorial(layer_sizes=[8], unique_candidates=True)
  query, candidate = towers(config)
  model = m.TwoTowerModel(query, candidate, config)
  plain = m.TwoTowerModel(query, candidate, tutorial(layer_sizes=[8]))
  distinct = batch(TITLES, candidate)  # all titles differ: the same softmax as plain
  assert float(model.compute_loss_value(distinct, False)) == pytest.approx(
      float(plain.compute_loss_value(distinct, False)), rel=1e-5)
  logits, labels = model.in_batch_logits(batch([TITLES[0], TITLES[1], TITLES[0]], candidate),
                                         training=False)
  assert logits.shape == (3, 2) and labels.numpy().tolist() == [0, 1, 0]


def test_catalog_softmax_scores_every_catalog_title_whatever_the_batch_holds():
  config = tutorial(layer_sizes=[8], softmax='catalog', logq_correction=True,
                    temperature=0.5)
  query, candidate = towers(config)
  model = m.TwoTowerModel(query, candidate, config,
                          title_log_probability=tf.constant(np.log([1e-9, .4, .3, .2, .1])))
  titles = [TITLES[2], TITLES[0], TITLES[2]]  # two titles of four, one repeated
  features = batch(titles, candidate)
  scores = query(features).numpy() @ candidate(tf.constant(TITLES)).numpy().T / 0.5
  own = [TITLES.index(title) for title in titles]
  expected = np.log(np.exp(scores).sum(axis=1)) - scores[np.arange(3), own]  # no logQ
  logits, labels = model.in_batch_logits(features, training=False)
  assert labels.numpy().tolist() == own
  np.testing.assert_allclose(logits.numpy(), scores, rtol=1e-4, atol=1e-5)
  assert float(model.compute_loss_value(features, False)) == pytest.approx(expected.sum(),
                                                                          rel=1e-4)




def test_the_training_input_is_in_memory_when_it_fits_the_budget_and_streamed_when_not():
  from modules import inputs
  config = tutorial(layer_sizes=[8], memory_budget_mb=100)
  fits = 100 * 2**20 // inputs.BYTES_PER_EXAMPLE_IN_MEMORY
  assert inputs.choose_input_mode(config, fits) == 'memory'
  assert inputs.choose_input_mode(config, fits + 1) == 'stream'
  assert inputs.choose_input_mode(tutorial(layer_sizes=[8], input_mode='stream'),
                                  10) == 'stream'
  assert inputs.choose_input_mode(tutorial(layer_sizes=[8], input_mode='memory',
                                                 memory_budget_mb=1), 10**9) == 'memory'
  # MovieLens 25M's 20 million training ratings fit the default budget.
  assert inputs.choose_input_mode(tutorial(layer_sizes=[8]), 20_000_000) == 'memory'


def test_validation_samples_a_fixed_seeded_subset_in_order():
  from modules import inputs
  columns = {'a': np.arange(1000), 'b': np.arange(1000) * 2}
  sample = inputs.sample_rows(columns, 100, seed=7)
  assert len(sample['a']) == 100 and (np.diff(sample['a']) > 0).all()
  assert (sample['b'] == sample['a'] * 2).all()
  assert (inputs.sample_rows(columns, 100, seed=7)['a'] == sample['a']).all()
  assert inputs.sample_rows(columns, 0, seed=7) is columns
  assert inputs.sample_rows(columns, 5000, seed=7) is columns


def test_the_trainer_runs_on_the_first_gpu_tensorflow_sees_and_else_on_the_cpu():
  from modules import fitting

  class Device:  # what tf.config.list_logical_devices returns, by name
    def __init__(self, name):
      self.name = name

  assert fitting.training_device([Device('/device:GPU:0'), Device('/device:GPU:1')]) == (
      '/device:GPU:0')
  assert fitting.training_device([]) == '/CPU:0'


class WeightsByEpoch(tf.keras.callbacks.Callback):
  def __init__(self):
    super().__init__()
    self.weights = {}

  def on_epoch_end(self, epoch, logs=None):
    self.weights[epoch + 1] = self.model.get_weights()


@pytest.mark.parametrize('figures, patience, epochs_run, kept', [
    ([0.30, 0.50, 0.40, 0.45, 0.60], 1, 3, 2),  # epoch 2 is the best until epoch 5
    ([0.30, 0.50, 0.40, 0.45, 0.60], 2, 4, 2),
    ([0.30, 0.50, 0.40], 2, 3, 2),  # the last epoch ends training before patience runs out
    ([0.30, 0.50, 0.40, 0.45, 0.60], 0, 5, None)])
def test_early_stopping_stops_after_patience_and_keeps_the_best_epochs_weights(
    figures, patience, epochs_run, kept):
  from modules import callbacks
  scripted = iter(figures)
  model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
  model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss='mse')
  seen, history = WeightsByEpoch(), callbacks.EpochHistory()
  stopping = [callbacks.EarlyStopping(patience)] if patience else []
  model.fit(np.random.default_rng(0).normal(size=(64, 3)), np.ones(64), epochs=len(figures),
            verbose=0, callbacks=[seen, callbacks.ElapsedTime(),
                                  callbacks.Validation(lambda: {'100': next(scripted)}, 1,
                                                       len(figures)),
                                  *stopping, history])
  assert len(history.entries) == epochs_run
  assert [entry['val_top_k']['100'] for entry in history.entries] == figures[:epochs_run]
  if stopping:
    assert stopping[0].kept_epoch == kept
  for now, then in zip(model.get_weights(), seen.weights[kept or epochs_run]):
    np.testing.assert_array_equal(now, then)


def test_validation_runs_every_validation_freq_epochs_and_after_the_last():
  from modules import callbacks
  model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
  model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss='mse')
  history = callbacks.EpochHistory()
  model.fit(np.ones((8, 3)), np.ones(8), epochs=5, verbose=0,
            callbacks=[callbacks.ElapsedTime(),
                       callbacks.Validation(lambda: {'1': 0.1, '100': 0.5}, 2, 5), history])
  assert [entry['epoch'] for entry in history.entries] == [1, 2, 3, 4, 5]
  assert [entry['epoch'] for entry in history.entries if 'val_top_k' in entry] == [2, 4, 5]
  assert history.entries[1]['val_top_k'] == {'1': 0.1, '100': 0.5}
  seconds = [entry['seconds'] for entry in history.entries]
  assert seconds == sorted(seconds) and seconds[0] > 0


def test_auto_softmax_is_exact_up_to_its_catalog_size_and_in_batch_beyond(monkeypatch):
  config = tutorial(layer_sizes=[8], softmax='auto')
  query, candidate = towers(config)  # a catalog of len(TITLES) titles
  assert m.TwoTowerModel(query, candidate, config).exact_softmax
  monkeypatch.setattr(hparams, 'CATALOG_SOFTMAX_MAX_TITLES', len(TITLES) - 1)
  model = m.TwoTowerModel(query, candidate, config)
  assert not model.exact_softmax
  logits, _ = model.in_batch_logits(batch([TITLES[0], TITLES[1]], candidate), training=False)
  assert logits.shape == (2, 2)  # the batch's titles, not the catalog's
  assert tutorial(layer_sizes=[8], softmax='catalog').uses_catalog_softmax(10**9)
  assert not tutorial(layer_sizes=[8]).uses_catalog_softmax(1)  # in-batch, the default


def test_the_in_memory_input_visits_every_row_once_an_epoch_in_a_new_seeded_order():
  from modules import inputs

  def epochs(seed, count=3):
    dataset = inputs.shuffled_row_numbers(1000, 64, seed)
    return [np.concatenate(list(dataset.as_numpy_iterator())) for _ in range(count)]

  first, second, third = epochs(seed=7)
  for order in (first, second, third):
    assert sorted(order) == list(range(1000))
  assert not (first == second).all() and not (second == third).all()
  assert all((a == b).all() for a, b in zip(epochs(seed=7), (first, second, third)))
  assert not (epochs(seed=8, count=1)[0] == first).all()
  assert inputs.shuffled_row_numbers(1000, 64, 7).cardinality() == 16  # Keras needs it


def test_the_cosine_schedule_falls_from_the_learning_rate_to_zero_over_the_epochs():
  from modules import fitting
  config = tutorial(layer_sizes=[8], epochs=4, learning_rate=0.01)
  assert fitting.learning_rate(config, steps_per_epoch=25) == 0.01
  schedule = fitting.learning_rate(
      tutorial(layer_sizes=[8], epochs=4, learning_rate=0.01,
                     learning_rate_schedule='cosine'), steps_per_epoch=25)
  assert [round(float(schedule(step)), 6) for step in (0, 50, 100)] == [0.01, 0.005, 0.0]


def tiny_training_inputs(num_ratings=600, num_users=30, seed=0):
  """Vocabularies, training and eval columns of the model's features, random but fixed."""
  from modules import inputs
  rng = np.random.default_rng(seed)

  def columns(n):
    return {f.USER_INDEX: rng.integers(0, num_users, n),
            f.TIMESTAMP_BUCKET: rng.integers(0, 11, n),
            f.TIMESTAMP_Z: rng.normal(size=n).astype(np.float32),
            f.MOVIE_TITLE: np.array(TITLES, dtype=object)[rng.integers(0, len(TITLES), n)]
            .astype(bytes)}

  vocabularies = inputs.Vocabularies(num_users=num_users + 1, num_timestamp_buckets=12,
                                     titles=TITLES, title_tokens=TOKENS)
  return vocabularies, columns(num_ratings), columns(num_ratings // 4)


def test_an_ensemble_trains_each_seeds_pair_as_alone_and_serves_the_sum_of_their_scores():
  from modules import fitting
  vocabularies, train, eval_ = tiny_training_inputs()
  config = tutorial(layer_sizes=[16, 8], epochs=2, validation_freq=1, batch_size=64,
                          optimizer='adam', learning_rate=0.01, seed=3, ensemble=2)
  ensemble = fitting.fit(config, vocabularies, train, eval_)
  assert [pair.seed for pair in ensemble.pairs] == [3, 4]
  assert isinstance(ensemble.query_tower, m.SideBySide)
  # Each pair is the one its seed trains alone.
  alone = fitting.fit(dataclasses.replace(config, ensemble=1), vocabularies, train, eval_)
  assert len(alone.pairs) == 1 and alone.query_tower is alone.pairs[0].query_tower
  untimed = [[{key: value for key, value in entry.items() if key != 'seconds'}
              for entry in fit.pairs[0].history] for fit in (alone, ensemble)]
  assert untimed[0] == untimed[1]
  queries, candidates = fitting.embed_queries, fitting.embed_candidates
  np.testing.assert_allclose(queries(ensemble.pairs[0].query_tower, eval_),
                             queries(alone.query_tower, eval_), rtol=1e-5, atol=1e-6)
  assert not np.allclose(candidates(ensemble.pairs[0].candidate_tower, TITLES),
                         candidates(ensemble.pairs[1].candidate_tower, TITLES))
  # Side by side: the score of a query and a title is the sum of the pairs' scores.
  together = queries(ensemble.query_tower, eval_) @ candidates(ensemble.candidate_tower,
                                                               TITLES).T
  summed = sum(queries(pair.query_tower, eval_) @ candidates(pair.candidate_tower, TITLES).T
               for pair in ensemble.pairs)
  np.testing.assert_allclose(together, summed, rtol=1e-4, atol=1e-5)
  ranks = metrics.ranks_of_truth(lambda rows: summed[rows], ensemble.validation.true_index)
  assert ensemble.kept_top_k == metrics.top_k(ranks, names.TOP_KS)
  # The kept epoch and figures are the first pair's; a pair alone keeps its own.
  assert ensemble.history == ensemble.pairs[0].history and ensemble.kept_epoch == 2
  assert alone.kept_top_k == alone.pairs[0].history[-1]['val_top_k']
  with pytest.raises(ValueError, match='ensemble must be at least 1'):
    tutorial(layer_sizes=[8], ensemble=0)
