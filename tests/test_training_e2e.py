"""What the Trainer leaves behind after the real pipeline ran on synthetic data."""
import json
import os

import numpy as np
import pytest

from modules import serving, trainer
from shared import names
from tests import synthetic
from tests.pipeline_run import run_pipeline

KS = tuple(str(k) for k in names.TOP_KS)
HOLDOUT_PERCENT = 20


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  root = tmp_path_factory.mktemp('training')
  # 300 titles: top-10 and top-50 are far from the whole catalog, so learning shows.
  # User features on, and a fifth of the users held out of training: their occupation
  # names their taste group, which the model can serve them by.
  # In MovieLens 1M's layout: the whole pipeline on it, blessed and pushed.
  release = synthetic.make_clustered_release(seed=5, occupation_tells_group=True)
  data_dir = synthetic.write_grouplens_1m(release, str(root / 'ml-1m'))
  result = run_pipeline(data_dir, str(root / 'outputs'), '--epochs', '3',
                        '--validation-freq', '2', '--batch-size', '128',
                        '--layer-sizes', '32,16', '--learning-rate', '0.01',
                        '--user-features', '--holdout-users', str(HOLDOUT_PERCENT))
  assert result.exit_code == 0, result.stderr
  return result, release


def test_the_1m_layout_runs_through_the_whole_pipeline_blessed_and_pushed(run):
  result, _ = run
  outputs = result.outputs()
  assert outputs['MovieLensExampleGen.examples'].properties['data_layout'] == 'grouplens-1m'
  report = _evaluation(result)
  assert set(report['slices']) == {'user_gender', 'bucketized_user_age',
                                   'user_occupation_text', 'user_training_ratings'}
  assert report['gate']['blessed'] and outputs['ServingPusher.pushed_model'].properties[
      'pushed']
  # The served model takes the user features the release has.
  from modules import serving
  from tests.pipeline_run import signature_names
  assert signature_names(outputs['CatalogTrainer.model'].uri) == set(
      serving.SIGNATURES + serving.FEATURE_SIGNATURES)


def test_training_progress_and_the_final_figures_are_printed(run):
  result, _ = run
  assert 'epoch 2/3: loss' in result.stdout and 'val top-100' in result.stdout
  assert 'Validation top-100 accuracy' in result.stdout
  assert 'most-popular baseline' in result.stdout


def test_history_records_loss_and_validation_top_k(run):
  result, release = run
  model_run = result.outputs()['CatalogTrainer.model_run'].uri
  with open(os.path.join(model_run, names.HISTORY_FILE)) as file:
    report = json.load(file)
  assert [entry['epoch'] for entry in report['history']] == [1, 2, 3]
  validated = [entry for entry in report['history'] if 'val_top_k' in entry]
  assert [entry['epoch'] for entry in validated] == [2, 3]  # every 2 epochs, and the last
  for entry in validated:
    assert set(entry['val_top_k']) == set(KS)
    accuracies = [entry['val_top_k'][k] for k in KS]
    assert accuracies == sorted(accuracies) and 0 <= accuracies[0] and accuracies[-1] <= 1
  # The preset's ensemble: three pairs from consecutive seeds, each with its own history;
  # early stopping (the preset's patience) keeps each pair's best validated epoch.
  seed, pairs = report['config']['seed'], report['pairs']
  assert [pair['seed'] for pair in pairs] == [seed, seed + 1, seed + 2]
  assert report['history'] == pairs[0]['history'] and report['best_epoch'] == pairs[0]['best_epoch']
  for pair in pairs:
    validated = [entry for entry in pair['history'] if 'val_top_k' in entry]
    best = max(validated, key=lambda entry: entry['val_top_k']['100'])
    assert pair['best_epoch'] == best['epoch'] and pair['final_val_top_k'] == best['val_top_k']
  # The pairs differ; the kept figure is theirs side by side (the Evaluator's, test_gate_e2e).
  assert pairs[0]['history'] != pairs[1]['history']
  assert set(report['popularity_baseline_top_k']) == set(KS)
  assert report['config']['layer_sizes'] == [32, 16] and report['num_candidates'] == 300
  assert report['num_train'] + report['num_eval'] == len(release.ratings)


def test_the_served_ensemble_scores_as_its_pairs_side_by_side_validated(run):
  # The Evaluator queries the pushed SavedModel; the Trainer validated its three pairs
  # side by side on the same eval split (all of it at this size): the same figures.
  result, _ = run
  report = _evaluation(result)
  with open(os.path.join(result.outputs()['CatalogTrainer.model_run'].uri,
                         names.HISTORY_FILE)) as file:
    history = json.load(file)
  assert history['config']['ensemble'] == 3 and history['num_validation'] == history['num_eval']
  one_rating = 1 / report['num_eval_ratings']
  for k, value in history['final_val_top_k'].items():
    assert report['top_k']['model'][k] == pytest.approx(value, abs=one_rating)
  assert history['final_val_top_k'] not in [pair['final_val_top_k'] for pair in history['pairs']]


def test_the_model_learns_what_the_popularity_list_cannot(run):
  # Users rate mostly within their taste group: at K well below the 300 titles, the trained
  # model must beat the most-rated list on the same split, and improve as it trains.
  result, _ = run
  with open(os.path.join(result.outputs()['CatalogTrainer.model_run'].uri,
                         names.HISTORY_FILE)) as file:
    report = json.load(file)
  final, popular = report['final_val_top_k'], report['popularity_baseline_top_k']
  assert final['10'] > 1.5 * popular['10'] and final['50'] > popular['50']
  first = next(e for e in report['history'] if 'val_top_k' in e)['val_top_k']
  assert first['50'] <= final['50'] < 1


def test_the_plot_and_tensorboard_logs_hold_the_history(run):
  import tensorflow as tf
  result, _ = run
  model_run = result.outputs()['CatalogTrainer.model_run'].uri
  with open(os.path.join(model_run, names.HISTORY_FILE)) as file:
    pairs = json.load(file)['pairs']
  # The plot: a real image with something drawn on it.
  image = tf.io.decode_png(tf.io.read_file(os.path.join(model_run, names.PLOT_FILE))).numpy()
  assert image.shape[0] > 200 and image.shape[1] > 300
  assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 10  # not blank
  # TensorBoard: every summary of every pair (pair-N/) read back, equal to history.json,
  # epoch by epoch.
  for number, pair in enumerate(pairs, start=1):
    logs, logged = os.path.join(model_run, f'pair-{number}'), {}
    for name in os.listdir(logs):
      if name.startswith('events.out.tfevents'):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(logs, name)):
          for value in event.summary.value:
            logged[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    expected = {('loss', e['epoch']): e['loss'] for e in pair['history']}
    expected.update({(f'validation/top_{k}_accuracy', e['epoch']): v for e in pair['history']
                     for k, v in e.get('val_top_k', {}).items()})
    assert logged.keys() == expected.keys()
    assert all(logged[key] == pytest.approx(value, rel=1e-6) for key, value in expected.items())


def test_the_served_model_and_the_candidate_tower_are_saved(run):
  result, release = run
  model = result.outputs()['CatalogTrainer.model'].uri
  titles, embeddings = serving.read_catalog(os.path.join(model, 'Format-Serving'))
  assert titles == sorted(m.title for m in release.movies)
  assert embeddings.shape == (300, 3 * 16)  # the preset's three pairs side by side
  assert os.path.exists(os.path.join(model, 'Format-Serving', 'saved_model.pb'))
  assert os.path.isdir(os.path.join(model, names.CANDIDATE_TOWER_DIR))


def test_the_saved_model_was_checked_against_the_trained_one(run):
  result, _ = run
  assert 'Saved model checked against the trained one on 40 probe queries' in result.stdout
  with open(os.path.join(result.outputs()['CatalogTrainer.model_run'].uri,
                         names.EXPORT_CHECK_FILE)) as file:
    check = json.load(file)
  assert len(check['user_id']) == len(check['embedding']) == len(check['top_titles']) == 40
  assert {len(titles) for titles in check['top_titles']} == {10}


def test_a_saved_model_that_differs_from_the_trained_one_fails_the_export(run):
  """The check can fail: a model whose saved signature answers differently is refused."""
  import tensorflow as tf
  result, _ = run
  directory = os.path.join(result.outputs()['CatalogTrainer.model'].uri, 'Format-Serving')
  trained = tf.saved_model.load(directory)

  class Drifted:  # the trained model's answers, moved a little
    candidates = trained.candidates
    max_k = 100
    titles = tf.constant(serving.read_catalog(directory)[0])

    @staticmethod
    def embed(**inputs):
      return {'embedding': trained.signatures['embed'](**inputs)['embedding'] + 0.01}

  probe = {'user_id': np.array(['1'], dtype=object), 'timestamp': np.array([0], np.int64)}
  with pytest.raises(RuntimeError, match='does not reproduce the trained one'):
    trainer.check_export(directory, Drifted, probe)


def test_the_layer_experiment_compares_runs_in_one_plot_and_table(run):
  from pipeline import metadata
  from pipeline import configs
  from tools import experiment
  # On the module's output directory: its data steps come from the cache.
  data_dir, output_dir = run[0].config.data.data_dir, run[0].config.local.output_dir
  store_path = configs.Local(output_dir=output_dir).metadata_path
  runs_before = len(metadata.runs(metadata.connect(store_path), 'movielens-tfx'))
  code = experiment.main(['--layer-sizes-list', '16', '32,16', '--data-dir', data_dir,
                          '--output-dir', output_dir, '--epochs', '1', '--batch-size', '128',
                          '--holdout-users', str(HOLDOUT_PERCENT)])
  assert code == 0
  files = sorted(os.listdir(os.path.join(output_dir, 'experiments')))
  assert [name.rsplit('.', 1)[1] for name in files] == ['md', 'png']
  with open(os.path.join(output_dir, 'experiments', files[0])) as file:
    table = file.read()
  assert '| [16] |' in table and '| [32, 16] |' in table and 'most popular' in table
  # Two more pipeline runs, each with its own trained model, the data steps reused.
  store = metadata.connect(store_path)
  runs = metadata.runs(store, 'movielens-tfx')
  assert len(runs) == runs_before + 2
  for context in runs[-2:]:
    states = {e.component: e.state for e in metadata.run_executions(store, 'movielens-tfx',
                                                                     context)}
    assert states['Transform'] == 'CACHED' and states['CatalogTrainer'] == 'COMPLETE'
    assert 'RetrievalEvaluator' not in states  # it trains; it evaluates and pushes nothing


def _evaluation(result):
  with open(os.path.join(result.outputs()['RetrievalEvaluator.evaluation'].uri,
                         names.EVALUATION_FILE)) as file:
    return json.load(file)


def test_held_out_users_have_every_rating_in_eval_and_none_in_train(run):
  from components.example_gen import ingest
  from tests.pipeline_run import feature_values, read_examples
  result, release = run
  held = {str(u.user_id) for u in release.users
          if ingest.held_out_user(str(u.user_id), HOLDOUT_PERCENT)}
  assert 0.1 * len(release.users) < len(held) < 0.3 * len(release.users)
  uri = result.outputs()['MovieLensExampleGen.examples'].uri
  train_users = {feature_values(e)['user_id'] for e in read_examples(uri, 'train')}
  eval_users = [feature_values(e)['user_id'] for e in read_examples(uri, 'eval')]
  assert not held & train_users
  assert sum(user in held for user in eval_users) == sum(
      str(r.user_id) in held for r in release.ratings)
  cold = _evaluation(result)['cold_start']
  assert cold['num_users'] == len(held) and cold['num_ratings'] == sum(
      str(r.user_id) in held for r in release.ratings)


def test_users_never_seen_are_served_by_their_features(run):
  # The held-out users' occupation names their taste group: queried with their features,
  # the model must beat the most-popular list and the mean user on those users at K well
  # below the 300 titles.
  result, _ = run
  cold = _evaluation(result)['cold_start']['top_k']
  assert cold['model_with_features']['50'] > 1.15 * cold['popularity']['50']
  assert cold['model_with_features']['50'] > cold['mean_user']['50']
  from tests.pipeline_run import inspect_at
  code, out, _ = inspect_at(result.config.local.output_dir, 'metrics', '--run',
                            str(result.run_number + 1))
  assert code == 0 and 'users never seen in training' in out
  assert f'{cold["model_with_features"]["50"]:.4f}' in out


def test_the_served_model_takes_user_features_optionally(run):
  import tensorflow as tf
  result, release = run
  model = tf.saved_model.load(os.path.join(result.outputs()['CatalogTrainer.model'].uri,
                                           'Format-Serving'))
  user = release.users[0]
  query = {'user_id': tf.constant(['no-such-user', str(user.user_id)]),
           'timestamp': tf.constant([885_000_000] * 2, tf.int64)}
  features = {'bucketized_user_age': tf.constant([float(synthetic.age_group(user.age))] * 2),
              # (as 1M gives them: the age group's lower bound)
              'user_gender': tf.constant([int(user.gender == 'M')] * 2, tf.int64),
              'user_occupation_text': tf.constant([user.occupation] * 2),
              'user_zip_code': tf.constant([user.zip_code] * 2)}
  with_features = model.signatures['embed_with_features'](**query, **features)['embedding']
  by_id = model.signatures['embed'](**query)['embedding']
  # An unknown user with features is not the mean user; serving_default reads the same
  # features from tf.Examples, and without them answers as `embed`.
  assert not np.allclose(with_features[0], by_id[0])

  def examples(with_user_features):
    out = []
    for row in range(2):
      feature = {'user_id': tf.train.Feature(bytes_list=tf.train.BytesList(
                     value=[query['user_id'][row].numpy()])),
                 'timestamp': tf.train.Feature(int64_list=tf.train.Int64List(value=[885_000_000]))}
      if with_user_features:
        feature.update({
            'bucketized_user_age': tf.train.Feature(float_list=tf.train.FloatList(
                value=[features['bucketized_user_age'][row].numpy()])),
            'user_gender': tf.train.Feature(int64_list=tf.train.Int64List(
                value=[features['user_gender'][row].numpy()])),
            'user_occupation_text': tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[user.occupation.encode()])),
            'user_zip_code': tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[user.zip_code.encode()]))})
      out.append(tf.train.Example(features=tf.train.Features(feature=feature))
                 .SerializeToString())
    return tf.constant(out)

  serve = model.signatures['serving_default']
  np.testing.assert_allclose(serve(examples=examples(True))['embedding'], with_features,
                             atol=1e-5)
  np.testing.assert_allclose(serve(examples=examples(False))['embedding'], by_id, atol=1e-5)
  titles = model.signatures['retrieve_with_features'](**query, **features,
                                                     k=tf.constant(100))['titles']
  assert titles.shape == (2, 100)
