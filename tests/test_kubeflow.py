"""runner_kubeflow.py compiles the local pipeline for Kubeflow V2, and the Dockerfile builds
the image the compiled spec names; read back as pipeline-spec protos."""
import contextlib
import importlib
import io
import json
import os
import re

import pytest

import runner_kubeflow
from components.example_gen import executor as example_gen_executor
from modules import hparams
from pipeline import configs
from shared import names
from tools.kfp_local import CompiledPipeline
from pipeline.pipeline import create_pipeline

IMAGE = 'registry.example.com/movielens-tfx:test'
EXECUTOR = ['python', '-m', 'tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor']
RESOLVER = 'latest_blessed_model_resolver'
RESOLVER_TASKS = {f'{RESOLVER}-model-blessing-resolver', f'{RESOLVER}-model-resolver'}


def compile_to(tmp_path, *flags):
  output_file = str(tmp_path / 'pipeline.json')
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    assert runner_kubeflow.main(['--image', IMAGE, '--output-file', output_file, *flags]) == 0
  return CompiledPipeline(output_file), out.getvalue()


@pytest.fixture(scope='module')
def compiled(tmp_path_factory):
  return compile_to(tmp_path_factory.mktemp('kubeflow'), '--output-dir', 'gs://bucket/movielens',
                    '--data-dir', 'gs://bucket/ml-100k', '--trainer-cpu', '8',
                    '--trainer-memory-gb', '32')[0]


def local_pipeline():
  config = configs.LocalConfig()
  return create_pipeline(config, config.local.pipeline_root, config.local.beam_args)


def test_every_component_of_the_local_pipeline_is_a_task_with_its_dependencies(compiled):
  local = local_pipeline()
  components = {c.id: c for c in local.components if c.id != RESOLVER}
  assert set(compiled.tasks) == set(components) | RESOLVER_TASKS
  for name, component in components.items():
    upstream = set()
    for node in component.upstream_nodes:
      upstream |= {f'{RESOLVER}-model-resolver'} if node.id == RESOLVER else {node.id}
    assert set(compiled.tasks[name].dependent_tasks) == upstream, name


def test_every_task_runs_the_image_through_tfxs_kubeflow_v2_entrypoint(compiled):
  for name in compiled.tasks:
    executor = compiled.executor(name)
    if name in RESOLVER_TASKS:  # resolvers are queries Kubeflow runs itself, no container
      assert not executor.HasField('container')
      continue
    container = executor.container
    assert container.image == IMAGE and list(container.command) == EXECUTOR, name
    assert container.args[:4] == ['--executor_class_path', container.args[1],
                                  '--json_serialized_invocation_args', '{{$}}']
  # ExampleGen's driver fingerprints the input before the executor runs.
  hook = compiled.executor('MovieLensExampleGen').container.lifecycle.pre_cache_check
  assert list(hook.command)[-1] == 'tfx.orchestration.kubeflow.v2.file_based_example_gen.driver'


def module_paths(compiled):
  """Executor classes and user functions the spec names by module path."""
  paths = set()
  for name, task in compiled.tasks.items():
    executor = compiled.executor(name)
    if executor.HasField('container'):
      paths.add(executor.container.args[1])
    for key, parameter in task.inputs.parameters.items():
      if key.endswith('_fn'):
        paths.add(parameter.runtime_value.constant_value.string_value)
  return paths


def test_every_module_path_in_the_spec_imports(compiled):
  paths = module_paths(compiled)
  assert {'modules.trainer.run_fn', 'modules.preprocessing.preprocessing_fn',
          'components.catalog_trainer.Executor', 'components.evaluator.executor.Executor',
          'components.pusher.Executor'} <= paths
  for path in paths:
    module, attribute = path.rsplit('.', 1)
    assert callable(getattr(importlib.import_module(module), attribute)), path


def test_the_catalog_and_the_blessing_are_wired_as_in_the_local_pipeline(compiled):
  inputs = {name: compiled.tasks[name].inputs.artifacts for name in compiled.tasks}
  assert inputs['CatalogTrainer']['catalog'].task_output_artifact.producer_task == (
      'MovieLensExampleGen')
  assert inputs['RetrievalEvaluator']['baseline_model'].task_output_artifact.producer_task == (
      f'{RESOLVER}-model-resolver')
  blessing = inputs['ServingPusher']['model_blessing'].task_output_artifact
  assert (blessing.producer_task, blessing.output_artifact_key) == ('RetrievalEvaluator',
                                                                    'blessing')


def test_settings_reach_the_spec_and_no_path_of_this_machine_leaks(compiled):
  text = str(compiled.job)
  assert 'gs://bucket/ml-100k' in text and 'gs://bucket/movielens/serving' in text
  assert compiled.job['runtimeConfig']['gcsOutputDirectory'] == (
      'gs://bucket/movielens/pipeline_root')
  assert names.REPO_ROOT not in text and os.path.expanduser('~') not in text
  resources = compiled.executor('CatalogTrainer').container.resources
  assert (resources.cpu_limit, resources.memory_limit) == (8, 32)


def test_the_data_directory_defaults_to_the_output_directorys(tmp_path):
  compiled, out = compile_to(tmp_path, '--output-dir', 'gs://mine/movielens')
  assert 'data gs://mine/movielens/data/ml-100k' in out
  assert 'gs://mine/movielens/data/ml-100k' in str(compiled.job)


def test_help_and_a_compile_with_every_default(tmp_path, monkeypatch, capsys):
  with pytest.raises(SystemExit) as exit_info:
    runner_kubeflow.main(['--help'])
  assert exit_info.value.code == 0
  help_text = capsys.readouterr().out
  for flag in ('--image', '--output-file', '--trainer-cpu', '--beam-args', '--serving-dir',
               '--pipeline-root', '--epochs'):
    assert flag in help_text
  # The local runner's own flags are not offered: a cluster keeps its own ML Metadata.
  for flag in ('--until', '--metadata-path'):
    assert flag not in help_text
    with pytest.raises(SystemExit):
      runner_kubeflow.main([flag, 'x'])
    assert f'unrecognized arguments: {flag}' in capsys.readouterr().err
  monkeypatch.chdir(tmp_path)
  assert runner_kubeflow.main([]) == 0
  out, err = capsys.readouterr()
  defaults = configs.Kubeflow()
  assert (tmp_path / defaults.output_file).exists()
  assert (tmp_path / runner_kubeflow.kfp_spec_path(defaults.output_file)).exists()
  assert f'image {defaults.image}' in out and configs.PLACEHOLDER_BUCKET in err


def test_the_kfp_client_reads_the_pipeline_spec_file(compiled, tmp_path):
  from kfp.client import client
  path = runner_kubeflow.write_kfp_spec(compiled.path, 'gs://bucket/root')
  document = client._extract_pipeline_yaml(path)  # what Client.upload_pipeline/create_run read
  assert document.pipeline_spec.default_pipeline_root == 'gs://bucket/root'
  assert set(document.pipeline_spec.root.dag.tasks) == set(compiled.tasks)


# The README's Beam arguments for a MovieLens 25M run on Dataflow.
DATAFLOW_ARGS = ['--runner=DataflowRunner', '--project=PROJECT', '--region=europe-west4',
                 '--temp_location=gs://bucket/movielens-tfx/tmp',
                 f'--sdk_container_image={IMAGE}', '--machine_type=n2-standard-4',
                 '--max_num_workers=16', '--experiments=use_runner_v2']


def test_dataflow_arguments_reach_every_beam_running_task(tmp_path):
  from tfx.dsl.components.base import executor_spec
  compiled, _ = compile_to(tmp_path, '--release', '25m', '--output-dir', 'gs://bucket/m',
                           '--beam-args', ' '.join(DATAFLOW_ARGS))
  # Which components run Beam comes from their definitions, not from a list kept here.
  beam_components = [
      c.id for c in local_pipeline().components
      if isinstance(getattr(c, 'executor_spec', None), executor_spec.BeamExecutorSpec)]
  assert {'MovieLensExampleGen', 'StatisticsGen', 'Transform'} <= set(beam_components)
  for name in beam_components:
    args = list(compiled.executor(name).container.args)
    assert args[-len(DATAFLOW_ARGS):] == DATAFLOW_ARGS, name
  assert 'gs://bucket/m/data/ml-25m' in str(compiled.job)


def test_a_large_local_data_directory_does_not_choose_the_clusters_beam_runner(tmp_path,
                                                                               monkeypatch):
  monkeypatch.setattr(os, 'cpu_count', lambda: 2)
  data = tmp_path / 'ml-25m'
  data.mkdir()
  with open(data / 'ratings.csv', 'wb') as ratings:
    ratings.truncate(configs.MULTI_PROCESSING_MIN_BYTES)  # sparse: no disk used
  assert configs.local_beam_args(str(data))  # a local run would take worker processes
  compiled, _ = compile_to(tmp_path, '--data-dir', str(data))
  assert 'direct_running_mode' not in str(compiled.job)


def test_the_25m_training_recipe_reaches_the_trainer_task(tmp_path):
  """docs/kubeflow.md's Trainer settings for MovieLens 25M: resources, a GPU, and the
  training settings that change with scale."""
  compiled, _ = compile_to(
      tmp_path, '--release', '25m', '--output-dir', 'gs://bucket/m', '--trainer-cpu', '8',
      '--trainer-memory-gb', '32', '--trainer-gpus', '1', '--trainer-gpu-type',
      'NVIDIA_TESLA_T4', '--preset', 'large', '--batch-size', '8192', '--learning-rate',
      '0.004', '--epochs', '5', '--validation-sample', '100000')
  resources = compiled.executor('CatalogTrainer').container.resources
  assert (resources.cpu_limit, resources.memory_limit) == (8, 32)
  assert (resources.accelerator.type, resources.accelerator.count) == ('NVIDIA_TESLA_T4', 1)
  parameters = compiled.tasks['CatalogTrainer'].inputs.parameters
  training = json.loads(parameters['custom_config'].runtime_value.constant_value.string_value)[
      'training']
  assert {k: training[k] for k in ('layer_sizes', 'batch_size', 'learning_rate', 'epochs',
                                   'validation_sample')} == {
      'layer_sizes': [128, 64, 32], 'batch_size': 8192, 'learning_rate': 0.004, 'epochs': 5,
      'validation_sample': 100000}


def test_without_the_blessed_model_comparison_there_is_no_resolver(tmp_path):
  compiled, _ = compile_to(tmp_path, '--no-compare-with-blessed')
  assert not set(compiled.tasks) & RESOLVER_TASKS
  assert 'baseline_model' not in compiled.tasks['RetrievalEvaluator'].inputs.artifacts


def lock_version(package):
  with open(os.path.join(names.REPO_ROOT, 'requirements.lock')) as file:
    return re.search(rf'^{package}==(\S+)$', file.read(), re.MULTILINE).group(1)


def test_the_dockerfile_builds_on_the_locks_tfx_and_installs_the_same_pins(compiled):
  with open(os.path.join(names.REPO_ROOT, 'Dockerfile')) as file:
    dockerfile = file.read()
  assert re.search(r'^FROM tensorflow/tfx:(\S+)$', dockerfile, re.MULTILINE).group(1) == (
      lock_version('tfx'))
  assert 'COPY requirements.lock' in dockerfile
  assert re.search(r'pip install .*--requirement requirements\.lock', dockerfile)
  assert 'TF_USE_LEGACY_KERAS=1' in dockerfile and 'PYTHONPATH=/movielens-tfx' in dockerfile
  copied = set(re.findall(r'^COPY (\w+) \1$', dockerfile, re.MULTILINE))
  # Every package the spec names by module path is in the image.
  named = {path.split('.')[0] for path in module_paths(compiled)}
  assert {'components', 'modules'} <= named - {'tfx'} <= copied
  assert {'pipeline', 'data'} <= copied  # imported by the components
  with open(os.path.join(names.REPO_ROOT, '.dockerignore')) as file:
    ignored = file.read().split()
  assert {'data/movielens', '.venv', 'outputs'} <= set(ignored)


def test_with_tune_a_tuner_task_feeds_the_trainer_its_best_hyperparameters(tmp_path):
  compiled, _ = compile_to(tmp_path, '--tune', '--tune-trials', '30', '--holdout-users', '10',
                           '--tune-validation-percent', '15', '--trainer-cpu', '8')
  assert 'CatalogTuner' in compiled.tasks
  tuned = compiled.tasks['CatalogTrainer'].inputs.artifacts['hyperparameters']
  assert (tuned.task_output_artifact.producer_task,
          tuned.task_output_artifact.output_artifact_key) == ('CatalogTuner',
                                                              'best_hyperparameters')
  assert compiled.tasks['CatalogTuner'].inputs.artifacts['catalog'].task_output_artifact\
      .producer_task == 'MovieLensExampleGen'
  parameters = {name: compiled.tasks[name].inputs.parameters for name in compiled.tasks}
  tuning = json.loads(parameters['CatalogTuner']['custom_config'].runtime_value
                      .constant_value.string_value)
  assert (tuning[names.TUNE_TRIALS], tuning[names.TUNE_VALIDATION_PERCENT]) == (30, 15)
  # and the settings the trials start from: the preset's
  assert hparams.TrainingConfig.from_json_dict(tuning['training']) == hparams.PRESETS[
      hparams.DEFAULT_PRESET]
  assert parameters['MovieLensExampleGen'][example_gen_executor.HOLDOUT_USERS_KEY].runtime_value\
      .constant_value.int_value == 10
  # The trials train as the Trainer does: the same resources.
  assert compiled.executor('CatalogTuner').container.resources == compiled.executor(
      'CatalogTrainer').container.resources
