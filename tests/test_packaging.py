"""`pip install .` gives a working project: the installed copy alone, with the repository out
of the path, runs the pipeline, the inspector and the Kubeflow compiler.

The lock's packages come from this virtual environment; what is checked is the project's
own file set (pyproject.toml's packages, modules and package data).
"""
import os
import pathlib
import subprocess
import sys

import pytest

from shared import names
from tests import synthetic
from tests.conftest import QUICK_TRAINING


@pytest.fixture(scope='module')
def installed(tmp_path_factory) -> pathlib.Path:
  """The project installed from a copy of its tracked files into a directory of its own."""
  root = tmp_path_factory.mktemp('packaging')
  source, site = root / 'source', root / 'site'
  tracked = subprocess.run(['git', 'ls-files'], cwd=names.REPO_ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
  for name in tracked:
    if os.path.exists(os.path.join(names.REPO_ROOT, name)):
      (source / name).parent.mkdir(parents=True, exist_ok=True)
      (source / name).write_bytes(pathlib.Path(names.REPO_ROOT, name).read_bytes())
  subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
                  '--no-build-isolation', '--target', str(site), str(source)], check=True,
                 capture_output=True)
  return site


def _run(site: pathlib.Path, cwd: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  env['PYTHONPATH'] = str(site)
  return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=900)


def test_the_installed_copy_is_what_runs(installed, tmp_path):
  where = _run(installed, tmp_path, '-c', 'import pipeline, inspector, runner_local; '
               'print(pipeline.__file__, inspector.__file__, runner_local.__file__)')
  assert where.returncode == 0, where.stderr
  assert all(path.startswith(str(installed)) for path in where.stdout.split()), where.stdout


def test_an_installed_copy_runs_the_pipeline_inspects_it_and_compiles_it(installed, tmp_path):
  data_dir = synthetic.write_grouplens_100k(synthetic.make_clustered_release(),
                                            str(tmp_path / 'ml'))
  output_dir = tmp_path / 'outputs'
  run = _run(installed, tmp_path, '-m', 'runner_local', '--data-dir', data_dir,
             '--output-dir', str(output_dir), *QUICK_TRAINING, '--epochs', '2')
  assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
  assert 'The model is served as version' in run.stdout
  assert list((output_dir / 'serving').iterdir())
  runs = _run(installed, tmp_path, '-m', 'inspector', 'runs', '--output-dir', str(output_dir))
  assert runs.returncode == 0 and 'complete' in runs.stdout, runs.stderr
  report = _run(installed, tmp_path, '-m', 'inspector', 'report', '--output-dir',
                str(output_dir))  # its HTML template is package data
  assert report.returncode == 0, report.stderr
  spec = tmp_path / 'kubeflow.json'
  compiled = _run(installed, tmp_path, '-m', 'runner_kubeflow', '--output-dir',
                  'gs://bucket/movielens-tfx', '--output-file', str(spec))
  assert compiled.returncode == 0, compiled.stderr
  assert spec.exists() and spec.with_suffix('.yaml').exists()
