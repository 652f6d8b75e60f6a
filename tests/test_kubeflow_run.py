"""The compiled Kubeflow pipeline runs: every container task of the spec, each in its own
process through TFX's Kubeflow V2 entrypoint with the arguments the spec gives it, on
synthetic data, each task's outputs feeding the next (pipeline/compiled.py)."""
import json
import os

import pytest

import runner_kubeflow
from pipeline.compiled import CompiledPipeline, LocalLauncher, metadata
from tests import synthetic
from tests.conftest import QUICK_TRAINING

ENTRYPOINT = 'tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor'


@pytest.fixture(scope='module')
def launched(tmp_path_factory):
  root = tmp_path_factory.mktemp('kubeflow_run')
  data_dir = synthetic.write_grouplens_100k(synthetic.make_clustered_release(),
                                            str(root / 'ml-100k'))
  spec_file = str(root / 'pipeline.json')
  assert runner_kubeflow.main([
      '--output-file', spec_file, '--data-dir', data_dir, '--output-dir', str(root / 'bucket'),
      *QUICK_TRAINING, '--epochs', '2']) == 0
  pipeline = CompiledPipeline(spec_file)
  launcher = LocalLauncher(pipeline, str(root / 'tasks'))
  for task in pipeline.container_tasks():
    launcher.run(task)
  return pipeline, launcher, root


def test_every_container_task_ran_as_its_own_process_through_the_entrypoint(launched):
  pipeline, launcher, _ = launched
  assert set(launcher.outputs) == {
      'MovieLensExampleGen', 'StatisticsGen', 'SchemaGen', 'ExampleValidator',
      'ValidationGate', 'Transform', 'CatalogTrainer', 'RetrievalEvaluator', 'ServingPusher'}
  for task, commands in launcher.commands.items():
    assert commands[-1][1:3] == ['-m', ENTRYPOINT], task
    assert commands[-1][4] == pipeline.executor(task).container.args[1]  # executor class
  assert launcher.commands['MovieLensExampleGen'][0][2].endswith(
      'file_based_example_gen.driver')


def test_example_gen_read_every_rating_and_the_catalog(launched):
  _, launcher, _ = launched
  outputs = launcher.outputs['MovieLensExampleGen']
  examples = metadata(outputs['examples'])
  assert examples['num_examples_train'] + examples['num_examples_eval'] == 3000
  assert json.loads(examples['split_names']) == ['train', 'eval']
  assert metadata(outputs['catalog'])['num_movies'] == 300
  for split in ('train', 'eval'):
    assert os.listdir(os.path.join(outputs['examples'].uri, f'Split-{split}'))


def test_transform_and_the_trainer_chained_their_outputs(launched):
  _, launcher, _ = launched
  graph = launcher.outputs['Transform']['transform_graph'].uri
  assert {'transform_fn', 'transformed_metadata'} <= set(os.listdir(graph))
  model = launcher.outputs['CatalogTrainer']['model'].uri
  assert os.path.exists(os.path.join(model, 'Format-Serving', 'saved_model.pb'))
  with open(os.path.join(launcher.outputs['CatalogTrainer']['model_run'].uri,
                         'history.json')) as file:
    history = json.load(file)
  assert len(history['history']) == 2 and history['num_candidates'] == 300


def test_the_evaluator_blessed_as_kubeflow_expects_and_the_pusher_pushed(launched):
  _, launcher, root = launched
  blessing = metadata(launcher.outputs['RetrievalEvaluator']['blessing'])
  assert blessing['blessed'] == 1
  # The entrypoint rewrote the model's id to its Kubeflow artifact name, as for TFX's own
  # Evaluator: what Kubeflow's resolver of the latest blessed model looks up.
  assert blessing['current_model_id'] == 'CatalogTrainer.model'
  pushed = metadata(launcher.outputs['ServingPusher']['pushed_model'])
  assert pushed['pushed'] == 1
  assert os.listdir(root / 'bucket' / 'serving') == [pushed['pushed_version']]
