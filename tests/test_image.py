"""The image (`make image`, the Dockerfile) holds what a Kubeflow cluster runs: every module
a compiled task names imports inside it with only the packages the Dockerfile copies, it
sets TF_USE_LEGACY_KERAS, it holds the lock's versions and no MovieLens data, environment
or outputs, and the compiled pipeline runs in it, one `docker run` per task step
(tools/kfp_local.py's DockerLauncher), to a blessed, pushed model, the second launch's
resolvers finding the first launch's model, every file readable on the host.

The tests that need the image are skipped unless MOVIELENS_TFX_IMAGE names a built image
(and DOCKER_HOST a daemon that holds it), so that `make test` stays what it was on a
machine without Docker; .ci/run builds the image and sets MOVIELENS_TFX_IMAGE with
REQUIRE_IMAGE=1, under which a missing image fails instead. The first test needs no image:
it checks the Dockerfile's COPY lines against what the tasks import here."""
import json
import os
import re
import subprocess
import sys
import time

import pytest

import runner_kubeflow
from shared import names
from tests import test_kubeflow_run
from tests.test_kubeflow import lock_version, module_paths
from tools.kfp_local import CompiledPipeline, DockerLauncher
# The in-process launch's tests, here run against the containers' launch (the `launched`
# fixture below): the same artifacts, blessing, push and second launch are expected.
from tests.test_kubeflow_run import (  # noqa: F401  (collected here as this file's tests)
    test_every_container_task_ran_as_its_own_process_through_the_entrypoint,
    test_example_gen_read_every_rating_and_the_catalog,
    test_the_evaluator_blessed_as_kubeflow_expects_and_the_pusher_pushed,
    test_the_second_run_resolves_the_first_runs_blessed_model_as_its_baseline,
    test_transform_and_the_trainer_chained_their_outputs)

IMAGE = os.environ.get('MOVIELENS_TFX_IMAGE', '')
DOCKERFILE = os.path.join(names.REPO_ROOT, 'Dockerfile')
WORKDIR = '/movielens-tfx'  # the Dockerfile's WORKDIR and PYTHONPATH
# Directories of the Dockerfile's COPY lines that are Python packages of this project.
_COPY = re.compile(r'^COPY\s+(\S+)\s+(\S+)\s*$', re.MULTILINE)


def copied_packages():
  """The project's packages the Dockerfile copies (`COPY components components`): read
  from the Dockerfile itself, so that a package added to the project but not to the
  Dockerfile shows up here as missing rather than passing a hard-coded list."""
  with open(DOCKERFILE) as file:
    lines = _COPY.findall(file.read())
  return {source for source, target in lines
          if os.path.isfile(os.path.join(names.REPO_ROOT, source, '__init__.py'))}


@pytest.fixture(scope='module')
def compiled(tmp_path_factory):
  output_file = str(tmp_path_factory.mktemp('image_spec') / 'pipeline.json')
  assert runner_kubeflow.main(['--output-file', output_file]) == 0
  return CompiledPipeline(output_file)


@pytest.fixture(scope='module')
def image():
  """The image under test; skips (or, under REQUIRE_IMAGE, fails) when there is none."""
  problem = None
  if not IMAGE:
    problem = 'MOVIELENS_TFX_IMAGE names no image (build one: make image)'
  else:
    found = subprocess.run(['docker', 'image', 'inspect', IMAGE], capture_output=True,
                           text=True)
    if found.returncode != 0:
      problem = (f'no image {IMAGE} in the Docker daemon at '
                 f'{os.environ.get("DOCKER_HOST", "the default socket")}: '
                 f'{found.stderr.strip()[-300:]} (make image; scripts/dockerd.sh start)')
  if problem:
    if os.environ.get('REQUIRE_IMAGE'):
      pytest.fail(f'the image is required here (REQUIRE_IMAGE): {problem}')
    pytest.skip(problem)
  return IMAGE


def in_image(image, *command, check=True):
  """Runs a command in a fresh container of the image, without network."""
  result = subprocess.run(['docker', 'run', '--rm', '--network=none', image, *command],
                          capture_output=True, text=True)
  if check:
    assert result.returncode == 0, f'{command} in {image}:\n{result.stderr[-3000:]}'
  return result


# The modules the compiled tasks name, imported in a fresh interpreter: the project's
# packages it loaded on the way (by the files they came from), as JSON.
_IMPORT_SCRIPT = '''
import importlib, json, os, sys
root, paths = sys.argv[1], sys.argv[2:]
failed = {}
for path in paths:
  module, attribute = path.rsplit('.', 1)
  try:
    if not callable(getattr(importlib.import_module(module), attribute)):
      failed[path] = 'not callable'
  except Exception as error:
    failed[path] = f'{type(error).__name__}: {error}'
# The project's files, not an environment's that happens to lie under it (a .venv).
envs = tuple(os.path.join(os.path.abspath(p), '') for p in (sys.prefix, sys.base_prefix))
loaded = sorted({name.split('.')[0] for name, m in list(sys.modules.items())
                 if (f := os.path.abspath(getattr(m, '__file__', None) or '/'))
                 .startswith(os.path.join(root, '')) and not f.startswith(envs)})
print(json.dumps({'failed': failed, 'packages': loaded}))
'''


def test_every_package_the_tasks_import_is_copied_by_the_dockerfile(compiled):
  """Here, without the image: the project's packages that the spec's modules import
  (transitively) are ones the Dockerfile copies. The local runner's own modules
  (runner_local.py, pipeline/local.py, the inspector) need not be: no task imports them."""
  paths = sorted(module_paths(compiled))
  result = subprocess.run([sys.executable, '-c', _IMPORT_SCRIPT, names.REPO_ROOT, *paths],
                          capture_output=True, text=True, cwd=names.REPO_ROOT,
                          env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert report['failed'] == {}
  copied = copied_packages()
  assert {'components', 'modules'} <= set(report['packages'])  # the check sees them
  missing = set(report['packages']) - copied
  lines = ', '.join(f'`COPY {name} {name}`' for name in sorted(missing))
  assert not missing, (f'the compiled tasks import {sorted(missing)}, which the Dockerfile '
                       f'does not copy (it copies {sorted(copied)}): add {lines} to it')


def test_every_module_a_task_names_imports_in_the_image(compiled, image):
  """In the image, with nothing of this checkout mounted: each executor class and user
  function the spec names by module path imports, from the image's copy of the project."""
  paths = sorted(module_paths(compiled))
  report = json.loads(in_image(image, 'python', '-c', _IMPORT_SCRIPT, WORKDIR, *paths)
                      .stdout.strip().splitlines()[-1])
  assert report['failed'] == {}, f'in {image}: {report["failed"]}'
  assert set(report['packages']) <= copied_packages()
  assert {'components', 'modules'} <= set(report['packages'])


def test_the_image_sets_tf_use_legacy_keras_and_tensorflow_takes_keras_2(image):
  [env] = json.loads(subprocess.run(
      ['docker', 'image', 'inspect', '--format', '{{json .Config.Env}}', image],
      capture_output=True, text=True, check=True).stdout.strip() or 'null'),
  assert 'TF_USE_LEGACY_KERAS=1' in env and f'PYTHONPATH={WORKDIR}' in env
  # What the setting is for: TFRS 0.7.7 needs Keras 2 (tf-keras) under TensorFlow 2.16.
  keras = in_image(image, 'python', '-c', 'import tensorflow as tf; print(tf.keras.__name__)'
                   ).stdout.strip().splitlines()[-1]
  assert keras.startswith('tf_keras.'), keras


def test_the_image_holds_no_movielens_data_environment_or_outputs(image):
  listing = in_image(image, 'find', WORKDIR, '-maxdepth', '1', '-mindepth', '1').stdout.split()
  top = {os.path.basename(path) for path in listing}
  assert top == copied_packages() | {'requirements.lock'}, top  # .dockerignore works
  for name in ('.venv', 'outputs', '.git', 'tests', 'bench'):
    assert name not in top
  assert in_image(image, 'test', '-e', f'{WORKDIR}/data/movielens', check=False).returncode != 0
  # No MovieLens file anywhere in the image (its licence forbids redistributing it).
  found = in_image(image, 'find', '/', '-xdev', '(', '-name', 'u.data', '-o', '-name',
                   'ratings.dat', '-o', '-name', 'ratings.csv', '-o', '-name', 'ml-*.zip',
                   ')', '-print').stdout.split()
  assert found == []


def test_pip_list_in_the_image_reports_the_locks_versions(image):
  listed = {package['name'].lower().replace('_', '-'): package['version'] for package in
            json.loads(in_image(image, 'python', '-m', 'pip', 'list', '--format=json')
                       .stdout)}
  for package in ('tfx', 'tensorflow', 'tensorflow-recommenders', 'apache-beam'):
    assert listed.get(package) == lock_version(package), package
  with open(os.path.join(names.REPO_ROOT, 'requirements.lock')) as file:
    pins = dict(re.findall(r'^([\w.-]+)==(\S+)$', file.read(), re.MULTILINE))
  different = {name: (version, listed.get(name.lower().replace('_', '-')))
               for name, version in pins.items()
               if listed.get(name.lower().replace('_', '-')) != version}
  assert different == {}, f'lock version, image version: {different}'


@pytest.fixture(scope='module')
def launched(tmp_path_factory, image):
  """test_kubeflow_run's two launches, each task step in its own container of the image."""
  start = time.monotonic()
  launched = test_kubeflow_run.launch(
      tmp_path_factory.mktemp('image_run'),
      lambda pipeline, root, store: DockerLauncher(pipeline, root, image, store))
  # Shown with `pytest -s` (.ci/run): what each task's containers took.
  _, first, _, second = launched
  for label, launcher in (('launch 1', first), ('launch 2', second)):
    print(f'\n{label}: ' + ', '.join(f'{task} {seconds:.0f} s'
                                     for task, seconds in launcher.seconds.items()))
  print(f'both launches: {time.monotonic() - start:.0f} s (the Trainers and Evaluators of '
        'the two overlap)')
  return launched


def test_each_task_ran_as_one_docker_run_of_the_image_without_network(launched, image):
  pipeline, launcher, _, second = launched
  for task, lines in launcher.docker_commands.items():
    steps = [pipeline.executor(task).container]
    if steps[0].HasField('lifecycle'):
      steps.insert(0, steps[0].lifecycle.pre_cache_check)
    assert len(lines) == len(steps), task
    for line, step, command in zip(lines, steps, launcher.commands[task]):
      assert line[:4] == ['docker', 'run', '--rm', '--network=none'], task
      at = line.index(image)
      # The step's own command: its first word as the entrypoint, the rest and its
      # arguments after the image.
      assert line[at - 2:at] == ['--entrypoint', step.command[0]]
      assert line[at + 1:] == list(step.command[1:]) + command[len(step.command):], task
  assert set(second.docker_commands) == {'CatalogTrainer', 'RetrievalEvaluator'}


def test_what_the_containers_wrote_is_the_host_users_and_readable(launched):
  _, launcher, root, _ = launched
  written = [os.path.join(directory, name) for top in ('run-1', 'run-2', 'bucket')
             for directory, dirs, files in os.walk(root / top) for name in dirs + files]
  assert any(name.endswith('saved_model.pb') for name in written)
  for path in written:
    status = os.stat(path)
    assert (status.st_uid, status.st_gid) == (os.getuid(), os.getgid()), path
    assert os.access(path, os.R_OK), path


def test_a_package_missing_from_the_image_fails_its_task_naming_the_task_and_module(
    tmp_path, image):
  """An image without the `components` package (an empty directory mounted over the
  image's copy stands for a Dockerfile that forgot its COPY line): the first task that
  imports it fails, and the message says which task, which image and which module."""
  data_dir = test_kubeflow_run.synthetic.write_grouplens_100k(
      test_kubeflow_run.synthetic.make_clustered_release(), str(tmp_path / 'ml-100k'))
  spec_file = str(tmp_path / 'pipeline.json')
  assert runner_kubeflow.main(['--output-file', spec_file, '--data-dir', data_dir,
                               '--output-dir', str(tmp_path / 'bucket')]) == 0
  (tmp_path / 'empty').mkdir()
  launcher = DockerLauncher(
      CompiledPipeline(spec_file), str(tmp_path / 'run'), image,
      docker_args=('--mount', f'type=bind,source={tmp_path / "empty"},'
                              f'target={WORKDIR}/components,readonly'))
  with pytest.raises(RuntimeError) as failure:
    launcher.run('MovieLensExampleGen')
  first_line = str(failure.value).splitlines()[0]
  assert first_line.startswith(f'task MovieLensExampleGen failed in image {image} ')
  assert re.search(r": ModuleNotFoundError: No module named 'components\.example_gen", first_line)
