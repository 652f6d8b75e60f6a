"""Shared test set-up: environment before TensorFlow loads, and a synthetic-data pipeline run."""
import os

from shared import env

env.use_legacy_keras()  # before any test imports TensorFlow


import dataclasses  # noqa: E402
import hashlib  # noqa: E402
from typing import Dict, List  # noqa: E402

import pytest  # noqa: E402

KILLED_PUSH = '.staging-1-1'  # a staging directory of a push that never finished
# Settings that learn the clustered release's tastes in seconds: one pair of towers, whose
# figures grow with its epochs as the gate's tests need (the preset's ensemble is tested
# in test_training_e2e.py).
QUICK_TRAINING = ('--layer-sizes', '32', '--batch-size', '128', '--learning-rate', '0.01',
                  '--ensemble', '1')


@dataclasses.dataclass
class GatedRuns:
  """Runs of the real pipeline over one clustered release and one serving directory."""
  first: object  # a good model: blessed and pushed
  impossible: object  # the same model, an unreachable --min-top100: nothing pushed
  better: object  # more training, streamed: compared against the first, blessed and pushed
  worse: object  # one epoch after the better model was blessed: a regression, not blessed
  versions_after: List[Dict[str, str]]  # the serving directory after each run:
                                         # {version: digest of its files}


# Test groups by their time on one worker, longest first (docs/testing.md).
SLOW_GROUPS = ('tests.test_kubeflow_run', 'gated_runs', 'tests.test_reliability',
               'tests.test_pipeline_e2e', 'tests.test_training_e2e')


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
  """With pytest-xdist (`-n 2 --dist loadgroup`, pyproject.toml) a group's tests run in one
  worker, in order: each test file is a group, so its module fixtures are built once, and
  the files that use the gated runs are one group, so those four runs are made once.

  The groups are xdist_group markers (pytest-xdist's own mechanism), added here because
  the gated-runs group spans several files."""
  gated = {item.module.__name__ for item in items if 'gated_runs' in item.fixturenames}
  groups = {}
  for item in items:
    module = item.module.__name__
    groups[item] = group = 'gated_runs' if module in gated else module
    item.add_marker(pytest.mark.xdist_group(group))
  # The longest groups first, so that the two workers finish together.
  items.sort(key=lambda item: SLOW_GROUPS.index(groups[item]) if groups[item] in SLOW_GROUPS
             else len(SLOW_GROUPS))


@pytest.fixture(scope='session')
def gated_runs(tmp_path_factory) -> GatedRuns:
  from tests import synthetic
  from tests.pipeline_run import run_pipeline
  root = tmp_path_factory.mktemp('gated')
  data_dir = synthetic.write_grouplens_100k(synthetic.make_clustered_release(),
                                            str(root / 'ml-100k'))
  output_dir = str(root / 'outputs')
  serving_dir = root / 'outputs' / 'serving'
  runs, versions = [], []
  # The better model streams its training input (a small shuffle buffer) and validates on
  # a sample of the eval split; the others hold it in memory and validate on all of it.
  streamed = ('--input-mode', 'stream', '--shuffle-buffer', '500', '--validation-sample', '300')
  for flags in (('--epochs', '2'), ('--epochs', '2', '--min-top100', '1.01'),
                ('--epochs', '6', *streamed), ('--epochs', '1')):
    if len(runs) == 2:  # what a push killed half-way leaves: the next push must clear it
      (serving_dir / KILLED_PUSH / '1700000000' / 'variables').mkdir(parents=True)
    run = run_pipeline(data_dir, output_dir, *QUICK_TRAINING, *flags)
    assert run.exit_code == 0, run.stderr
    runs.append(run)
    versions.append({version.name: _digest(version) for version in serving_dir.iterdir()}
                    if serving_dir.exists() else {})
  return GatedRuns(*runs, versions_after=versions)


def _digest(directory) -> str:
  """A hash of every file's path and content under a directory."""
  digest = hashlib.sha256()
  for path in sorted(p for p in directory.rglob('*') if p.is_file()):
    digest.update(str(path.relative_to(directory)).encode() + b'\0' + path.read_bytes())
  return digest.hexdigest()

