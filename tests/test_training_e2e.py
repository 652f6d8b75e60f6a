"""What the Trainer leaves behind after the real pipeline ran on synthetic data."""
import json
import os

import numpy as np
import pytest

from modules import serving, trainer
from pipeline import names
from tests import synthetic
from tests.pipeline_run import run_pipeline

KS = ('1', '5', '10', '50', '100')


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  root = tmp_path_factory.mktemp('training')
  # 300 titles: top-10 and top-50 are far from the whole catalog, so learning shows.
  release = synthetic.make_clustered_release(seed=5)
  data_dir = synthetic.write_grouplens_100k(release, str(root / 'ml-100k'))
  result = run_pipeline(data_dir, str(root / 'outputs'), '--epochs', '3',
                        '--validation-freq', '2', '--batch-size', '128',
                        '--layer-sizes', '32,16', '--learning-rate', '0.01')
  assert result.exit_code == 0, result.stderr
  return result, release


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
  # Early stopping (the preset's patience) keeps the best validated epoch's towers.
  best = max(validated, key=lambda entry: entry['val_top_k']['100'])
  assert report['best_epoch'] == best['epoch'] and report['final_val_top_k'] == best['val_top_k']
  assert set(report['popularity_baseline_top_k']) == set(KS)
  assert report['config']['layer_sizes'] == [32, 16] and report['num_candidates'] == 300
  assert report['num_train'] + report['num_eval'] == len(release.ratings)


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
    history = json.load(file)['history']
  # The plot: a real image with something drawn on it.
  image = tf.io.decode_png(tf.io.read_file(os.path.join(model_run, names.PLOT_FILE))).numpy()
  assert image.shape[0] > 200 and image.shape[1] > 300
  assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 10  # not blank
  # TensorBoard: every summary read back, equal to history.json, epoch by epoch.
  logged = {}
  for name in os.listdir(model_run):
    if name.startswith('events.out.tfevents'):
      for event in tf.compat.v1.train.summary_iterator(os.path.join(model_run, name)):
        for value in event.summary.value:
          logged[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
  expected = {('loss', e['epoch']): e['loss'] for e in history}
  expected.update({(f'validation/top_{k}_accuracy', e['epoch']): v for e in history
                   for k, v in e.get('val_top_k', {}).items()})
  assert logged.keys() == expected.keys()
  assert all(logged[key] == pytest.approx(value, rel=1e-6) for key, value in expected.items())


def test_the_served_model_and_the_candidate_tower_are_saved(run):
  result, release = run
  model = result.outputs()['CatalogTrainer.model'].uri
  titles, embeddings = serving.read_catalog(os.path.join(model, 'Format-Serving'))
  assert titles == sorted(m.title for m in release.movies)
  assert embeddings.shape == (300, 16)
  assert os.path.exists(os.path.join(model, 'Format-Serving', 'saved_model.pb'))
  assert os.path.isdir(os.path.join(model, trainer.CANDIDATE_TOWER_DIR))


def test_the_saved_model_was_checked_against_the_trained_one(run):
  result, _ = run
  assert 'Saved model checked against the trained one on 40 probe queries' in result.stdout
  with open(os.path.join(result.outputs()['CatalogTrainer.model_run'].uri,
                         trainer.EXPORT_CHECK_FILE)) as file:
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
    titles = tf.constant(serving.read_catalog(directory)[0])

    @staticmethod
    def embed(**inputs):
      return {'embedding': trained.signatures['embed'](**inputs)['embedding'] + 0.01}

  probe = {'user_id': np.array(['1'], dtype=object), 'timestamp': np.array([0], np.int64)}
  with pytest.raises(RuntimeError, match='does not reproduce the trained one'):
    trainer.check_export(directory, Drifted, probe)


def test_the_layer_experiment_compares_runs_in_one_plot_and_table(run):
  from inspector import metadata
  from pipeline import configs
  from tools import experiment
  # On the module's output directory: its data steps come from the cache.
  data_dir, output_dir = run[0].config.data_dir, run[0].config.output_dir
  store_path = configs.PipelineConfig(output_dir=output_dir).metadata_path
  runs_before = len(metadata.runs(metadata.connect(store_path), 'movielens-tfx'))
  code = experiment.main(['--layer-sizes-list', '16', '32,16', '--data-dir', data_dir,
                          '--output-dir', output_dir, '--epochs', '1', '--batch-size', '128'])
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
