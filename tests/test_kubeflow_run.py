"""The compiled Kubeflow pipeline runs: every container task of the spec, each in its own
process through TFX's Kubeflow V2 entrypoint with the arguments the spec gives it, on
synthetic data, each task's outputs feeding the next (tools/kfp_local.py). A second run
retrains and finds the first run's blessed model through the spec's resolver tasks."""
import concurrent.futures
import json
import os

import pytest

import runner_kubeflow
from tools.kfp_local import ArtifactStore, CompiledPipeline, LocalLauncher, metadata
from tests import synthetic
from shared import names
from tests.conftest import QUICK_TRAINING

ENTRYPOINT = 'tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor'


@pytest.fixture(scope='module')
def launched(tmp_path_factory):
  return launch(tmp_path_factory.mktemp('kubeflow_run'), LocalLauncher)


def launch(root, make_launcher):
  """Two launches of the compiled pipeline on a synthetic release, each task run by
  `make_launcher(pipeline, root, store)`'s launcher (here: processes; tests/test_image.py:
  containers of the image)."""
  data_dir = synthetic.write_grouplens_100k(synthetic.make_clustered_release(),
                                            str(root / 'ml-100k'))
  spec_file = str(root / 'pipeline.json')
  assert runner_kubeflow.main([
      '--output-file', spec_file, '--data-dir', data_dir, '--output-dir', str(root / 'bucket'),
      *QUICK_TRAINING, '--epochs', '2']) == 0
  pipeline = CompiledPipeline(spec_file)
  store = ArtifactStore(str(root / 'artifacts.json'))
  launcher = make_launcher(pipeline, str(root / 'run-1'), store)
  trained = ('CatalogTrainer', 'RetrievalEvaluator', 'ServingPusher')
  for task in pipeline.container_tasks():
    if task not in trained:
      launcher.run(task)
  # Run 2: the data tasks are cache hits (their inputs did not change); the Trainer runs
  # again, and the Evaluator's baseline comes from the resolvers' queries of the store that
  # both runs share. (What its Pusher would push is tested on run 1.) The two Trainers are
  # independent and run at once; run 2's Evaluator waits for run 1's blessing.
  second = make_launcher(pipeline, str(root / 'run-2'), store)
  for task in pipeline.container_tasks():
    if task not in trained:
      second.reuse(task, launcher.outputs[task])
  with concurrent.futures.ThreadPoolExecutor(max_workers=1) as other:
    second_trainer = other.submit(second.run, 'CatalogTrainer')
    launcher.run('CatalogTrainer')
    launcher.run('RetrievalEvaluator')
    second_trainer.result()
    second_evaluator = other.submit(second.run, 'RetrievalEvaluator')
    launcher.run('ServingPusher')
    second_evaluator.result()
  return pipeline, launcher, root, second


def evaluation(launcher):
  with open(os.path.join(launcher.outputs['RetrievalEvaluator']['evaluation'].uri,
                         names.EVALUATION_FILE)) as file:
    return json.load(file)


def test_every_container_task_ran_as_its_own_process_through_the_entrypoint(launched):
  pipeline, launcher, _, _ = launched
  assert set(launcher.commands) == {
      'MovieLensExampleGen', 'StatisticsGen', 'SchemaGen', 'ExampleValidator',
      'ValidationGate', 'Transform', 'CatalogTrainer', 'RetrievalEvaluator', 'ServingPusher'}
  for task, commands in launcher.commands.items():
    assert commands[-1][1:3] == ['-m', ENTRYPOINT], task
    assert commands[-1][4] == pipeline.executor(task).container.args[1]  # executor class
  assert launcher.commands['MovieLensExampleGen'][0][2].endswith(
      'file_based_example_gen.driver')


def test_example_gen_read_every_rating_and_the_catalog(launched):
  _, launcher, _, _ = launched
  outputs = launcher.outputs['MovieLensExampleGen']
  examples = metadata(outputs['examples'])
  assert examples['num_examples_train'] + examples['num_examples_eval'] == 3000
  assert json.loads(examples['split_names']) == ['train', 'eval']
  assert metadata(outputs['catalog'])['num_movies'] == 300
  for split in ('train', 'eval'):
    assert os.listdir(os.path.join(outputs['examples'].uri, f'Split-{split}'))


def test_transform_and_the_trainer_chained_their_outputs(launched):
  _, launcher, _, _ = launched
  graph = launcher.outputs['Transform']['transform_graph'].uri
  assert {'transform_fn', 'transformed_metadata'} <= set(os.listdir(graph))
  model = launcher.outputs['CatalogTrainer']['model'].uri
  assert os.path.exists(os.path.join(model, 'Format-Serving', 'saved_model.pb'))
  with open(os.path.join(launcher.outputs['CatalogTrainer']['model_run'].uri,
                         'history.json')) as file:
    history = json.load(file)
  assert len(history['history']) == 2 and history['num_candidates'] == 300


def test_the_evaluator_blessed_as_kubeflow_expects_and_the_pusher_pushed(launched):
  _, launcher, root, _ = launched
  blessing = metadata(launcher.outputs['RetrievalEvaluator']['blessing'])
  assert blessing['blessed'] == 1
  # The entrypoint rewrote the model's id to its Kubeflow artifact name, as for TFX's own
  # Evaluator: what Kubeflow's resolver of the latest blessed model looks up.
  assert blessing['current_model_id'] == launcher.outputs['CatalogTrainer']['model'].name
  assert evaluation(launcher)['baseline_model'] is None  # the first run: nothing blessed yet
  assert 'baseline_model' not in evaluation(launcher)['top_k']
  pushed = metadata(launcher.outputs['ServingPusher']['pushed_model'])
  assert pushed['pushed'] == 1
  assert pushed['pushed_version'] in os.listdir(root / 'bucket' / 'serving')


def test_the_second_run_resolves_the_first_runs_blessed_model_as_its_baseline(launched):
  _, first, _, second = launched
  resolved = second.outputs['latest_blessed_model_resolver-model-resolver']['model']
  first_model = first.outputs['CatalogTrainer']['model']
  assert resolved.uri == first_model.uri  # found by the spec's queries, not handed over
  assert second.outputs['CatalogTrainer']['model'].uri != first_model.uri
  report, earlier = evaluation(second), evaluation(first)
  assert report['baseline_model']['uri'] == first_model.uri
  # The Evaluator scored the first run's model on the same eval split: the same figures.
  assert report['top_k']['baseline_model'] == pytest.approx(earlier['top_k']['model'], abs=1e-6)
  [check] = [c for c in report['gate']['checks'] if c['name'] == 'no_regression']
  assert check['threshold'] == pytest.approx(earlier['top_k']['model']['100'] - 0.01, abs=1e-6)
