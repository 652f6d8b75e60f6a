"""Faults around the data: a run killed with `kill -9` during Transform and during the
Trainer resumes from the cache; a second run on the same output directory refuses at once;
cached artifacts damaged on disk are named and recomputed. Real runs of runner_local.py on
synthetic data, real kills."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from pipeline import configs, run_lock
from tests import synthetic
from tests.conftest import QUICK_TRAINING
from tests.pipeline_run import inspect_json_at, run_pipeline

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = (*QUICK_TRAINING, '--epochs', '6')


def kill_during(component: str, data_dir: str, output_dir: str, while_running=None):
  """Starts a run as a user would and kills it (SIGKILL, its whole process group) a few
  seconds after `component` started; `while_running(pid)` is called just before the kill.
  Returns what the run printed."""
  process = subprocess.Popen(
      [sys.executable, 'runner_local.py', '--data-dir', data_dir, '--output-dir', output_dir,
       *FLAGS], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      start_new_session=True)
  printed = []
  for line in process.stdout:
    printed.append(line)
    if re.search(rf'\] {component} \.\.\.$', line.rstrip()):
      time.sleep(3)
      if while_running:
        while_running(process.pid)
      os.killpg(process.pid, signal.SIGKILL)
      break
  process.wait(timeout=60)
  assert process.returncode == -signal.SIGKILL, ''.join(printed)
  return ''.join(printed)


@pytest.fixture(scope='module')
def resumed(tmp_path_factory):
  """Run 1 killed in Transform, run 2 killed in the Trainer (a third run tried meanwhile),
  run 3 the same command to the end."""
  root = tmp_path_factory.mktemp('killed')
  data_dir = synthetic.write_grouplens_100k(synthetic.make_clustered_release(),
                                            str(root / 'ml-100k'))
  output_dir = str(root / 'out')
  kill_during('Transform', data_dir, output_dir)
  refused = {}

  def start_another_run(pid):
    refused['pid'] = pid
    refused['run'] = run_pipeline(data_dir, output_dir, *FLAGS)

  kill_during('CatalogTrainer', data_dir, output_dir, start_another_run)
  final = run_pipeline(data_dir, output_dir, *FLAGS)
  return data_dir, output_dir, refused, final


def test_a_killed_run_resumes_from_the_cache_and_ends_blessed_and_pushed(resumed):
  _, output_dir, _, final = resumed
  assert final.exit_code == 0, final.stderr
  runs = inspect_json_at(output_dir, 'runs')
  assert [r['state'] for r in runs] == ['interrupted', 'interrupted', 'complete']
  states = [{c['component']: c['state'] for c in r['components']} for r in runs]
  assert states[0]['Transform'] == 'running' and states[0]['CatalogTrainer'] == 'not run'
  assert states[1]['Transform'] == 'ran' and states[1]['CatalogTrainer'] == 'running'
  assert {states[1][c] for c in ('MovieLensExampleGen', 'SchemaGen', 'ValidationGate')} == {
      'cached'}
  assert states[2]['Transform'] == 'cached'
  assert {states[2][c] for c in ('CatalogTrainer', 'RetrievalEvaluator', 'ServingPusher')} == {
      'ran'}
  outputs = final.outputs()
  assert outputs['ServingPusher.pushed_model'].properties['pushed'] == 1
  assert 'The model is served as version' in final.stdout


def test_a_killed_components_partial_outputs_are_never_reused(resumed):
  _, output_dir, _, final = resumed
  transform_dir = os.path.join(configs.Local(output_dir=output_dir).pipeline_root,
                               'Transform', 'transform_graph')
  executions = sorted(os.listdir(transform_dir), key=int)
  assert len(executions) == 2  # the killed run's partial output, and run 2's
  used = final.outputs()['Transform.transform_graph'].uri
  assert os.path.basename(used) == executions[1]
  trainer_dir = os.path.dirname(final.outputs()['CatalogTrainer.model'].uri)
  assert len(os.listdir(trainer_dir)) == 2  # the killed Trainer's, and run 3's own


def test_a_second_run_on_the_same_output_directory_refuses_and_names_the_first(resumed):
  _, output_dir, refused, _ = resumed
  run = refused['run']
  assert run.exit_code == 1
  assert f'another run is using {output_dir} (pid {refused["pid"]}' in run.stderr
  assert 'runner_local.py' in run.stderr and '--output-dir' in run.stderr
  # It refused before touching anything: only the three runs are in ML Metadata.
  assert len(inspect_json_at(output_dir, 'runs')) == 3


def test_runs_on_different_output_directories_hold_different_locks(tmp_path):
  first, second = str(tmp_path / 'a' / 'metadata.sqlite'), str(tmp_path / 'b' / 'metadata.sqlite')
  with run_lock.hold(first, 'a'):
    with run_lock.hold(second, 'b'):
      pass
    with pytest.raises(run_lock.RunInProgressError, match=r'another run is using a \(pid '):
      with run_lock.hold(first, 'a'):
        pass
  with run_lock.hold(first, 'a'):  # released when its holder ends
    pass


def test_damaged_cached_artifacts_are_named_and_the_same_command_recomputes_them(resumed):
  data_dir, output_dir, _, final = resumed
  outputs = final.outputs()
  examples = outputs['Transform.transformed_examples'].uri
  [shard] = [os.path.join(directory, name) for directory, _, names in os.walk(examples)
             for name in names if 'Split-train' in directory]
  with open(shard, 'r+b') as file:
    file.truncate(os.path.getsize(shard) // 2)
  model = outputs['CatalogTrainer.model'].uri
  os.remove(os.path.join(model, 'Format-Serving', 'saved_model.pb'))
  flags = (*QUICK_TRAINING, '--epochs', '2')  # a new setting: the Trainer must read examples
  damaged = run_pipeline(data_dir, output_dir, *flags)
  assert damaged.exit_code == 1
  assert 'Transform.transformed_examples (artifact' in damaged.stderr
  assert f'{shard} is {os.path.getsize(shard):,} bytes' in damaged.stderr
  assert 'CatalogTrainer.model (artifact' in damaged.stderr
  assert 'saved_model.pb is missing' in damaged.stderr
  assert 'run the same command again' in damaged.stderr
  recovered = run_pipeline(data_dir, output_dir, *flags)
  assert recovered.exit_code == 0, recovered.stderr
  states = {c['component']: c['state'] for c in inspect_json_at(output_dir, 'runs')[-1][
      'components']}
  assert states['Transform'] == 'ran' and states['MovieLensExampleGen'] == 'cached'
  assert recovered.outputs()['Transform.transformed_examples'].uri != examples
