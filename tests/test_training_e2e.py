"""What the Trainer leaves behind after the real pipeline ran on synthetic data."""
import json
import os

import numpy as np
import pytest

from modules import serving, trainer
from tests import synthetic
from tests.pipeline_run import run_pipeline

KS = ('1', '5', '10', '50', '100')


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  root = tmp_path_factory.mktemp('training')
  release = synthetic.make_release(num_users=30, num_movies=40, num_ratings=600, seed=5)
  data_dir = synthetic.write_grouplens_100k(release, str(root / 'ml-100k'))
  result = run_pipeline(data_dir, str(root / 'outputs'), '--epochs', '3',
                        '--validation-freq', '2', '--batch-size', '128',
                        '--layer-sizes', '32,16')
  assert result.exit_code == 0, result.stderr
  return result, release


def test_training_progress_and_the_final_figures_are_printed(run):
  result, _ = run
  assert 'epoch 2/3: loss' in result.stdout and 'val top-100' in result.stdout
  assert 'Validation top-100 accuracy' in result.stdout
  assert 'most-popular baseline' in result.stdout


def test_history_records_loss_and_validation_top_k(run):
  result, _ = run
  model_run = result.outputs()['CatalogTrainer.model_run'].uri
  with open(os.path.join(model_run, trainer.HISTORY_FILE)) as file:
    report = json.load(file)
  assert [entry['epoch'] for entry in report['history']] == [1, 2, 3]
  validated = [entry for entry in report['history'] if 'val_top_k' in entry]
  assert [entry['epoch'] for entry in validated] == [2, 3]  # every 2 epochs, and the last
  for entry in validated:
    assert set(entry['val_top_k']) == set(KS)
    accuracies = [entry['val_top_k'][k] for k in KS]
    assert accuracies == sorted(accuracies) and 0 <= accuracies[0] and accuracies[-1] == 1.0
  assert report['final_val_top_k'] == validated[-1]['val_top_k']
  assert set(report['popularity_baseline_top_k']) == set(KS)
  assert report['config']['layer_sizes'] == [32, 16] and report['num_candidates'] == 40
  assert report['num_train'] + report['num_eval'] == 600


def test_the_plot_and_tensorboard_logs_are_written(run):
  result, _ = run
  model_run = result.outputs()['CatalogTrainer.model_run'].uri
  with open(os.path.join(model_run, trainer.PLOT_FILE), 'rb') as file:
    assert file.read(8) == b'\x89PNG\r\n\x1a\n'
  assert any(name.startswith('events.out.tfevents') for name in os.listdir(model_run))


def test_the_served_model_and_the_candidate_tower_are_saved(run):
  result, release = run
  model = result.outputs()['CatalogTrainer.model'].uri
  titles, embeddings = serving.read_catalog(os.path.join(model, 'Format-Serving'))
  assert titles == sorted(m.title for m in release.movies)
  assert embeddings.shape == (40, 16)
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


def test_the_layer_experiment_compares_runs_in_one_plot_and_table(tmp_path):
  from pipeline import experiment
  release = synthetic.make_release(num_users=20, num_movies=25, num_ratings=300, seed=6)
  data_dir = synthetic.write_grouplens_100k(release, str(tmp_path / 'ml-100k'))
  output_dir = str(tmp_path / 'outputs')
  code = experiment.main(['--layer-sizes-list', '16', '32,16', '--data-dir', data_dir,
                          '--output-dir', output_dir, '--epochs', '1', '--batch-size', '64',
                          '--beam-args=--direct_running_mode=in_memory'])
  assert code == 0
  files = sorted(os.listdir(os.path.join(output_dir, 'experiments')))
  assert [name.rsplit('.', 1)[1] for name in files] == ['md', 'png']
  with open(os.path.join(output_dir, 'experiments', files[0])) as file:
    table = file.read()
  assert '| [16] |' in table and '| [32, 16] |' in table and 'most popular' in table
  # Two pipeline runs, each with its own trained model.
  from pipeline import configs, metadata
  store = metadata.connect(configs.PipelineConfig(output_dir=output_dir).metadata_path)
  assert len(metadata.runs(store, 'movielens-tfx')) == 2
