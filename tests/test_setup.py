"""Configuration flags and the set-up script's answer on a machine without Python 3.10."""
import os
import subprocess

import pytest

from modules import hparams
from pipeline import configs
from shared import names
import runner_local

ROOT = names.REPO_ROOT


def test_flags_override_defaults_and_paths_follow_the_output_dir(tmp_path):
  config = configs.parse_args(['--output-dir', str(tmp_path), '--eval-percent', '10',
                               '--beam-args', '--direct_num_workers=2 --foo="a b"',
                               '--no-cache'])
  assert config.local.pipeline_root == os.path.join(str(tmp_path), 'pipeline_root')
  assert config.local.metadata_path == os.path.join(str(tmp_path), 'metadata.sqlite')
  assert config.serving.serving_dir == os.path.join(str(tmp_path), 'serving')
  assert config.data.eval_percent == 10 and config.run.cache is False
  assert config.local.beam_args == ['--direct_num_workers=2', '--foo=a b']


def test_defaults_are_the_recommended_local_run():
  config = configs.parse_args([])
  assert config.data.data_dir == os.path.join(ROOT, 'data', 'movielens', 'ml-100k')
  assert config.local.beam_args == list(configs.DEFAULT_BEAM_ARGS)
  assert config.run.cache is True
  assert config.training == hparams.PRESETS['recommended']


def test_beam_runs_a_worker_process_per_core_from_100_mb_of_local_data(tmp_path, monkeypatch):
  monkeypatch.setattr(os, 'cpu_count', lambda: 4)
  data = tmp_path / 'release'
  data.mkdir()
  ratings = data / 'ratings.csv'
  ratings.write_bytes(b'x')
  os.truncate(ratings, configs.MULTI_PROCESSING_MIN_BYTES - 1)  # sparse: no disk used
  assert configs.parse_args(['--data-dir', str(data)]).local.beam_args == []
  os.truncate(ratings, configs.MULTI_PROCESSING_MIN_BYTES)
  assert configs.parse_args(['--data-dir', str(data)]).local.beam_args == [
      '--direct_running_mode=multi_processing', '--direct_num_workers=4']
  # Given, even empty, the flag wins; one core gets no worker processes.
  assert configs.parse_args(['--data-dir', str(data), '--beam-args', '']).local.beam_args == []
  monkeypatch.setattr(os, 'cpu_count', lambda: 1)
  assert configs.parse_args(['--data-dir', str(data)]).local.beam_args == []


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  config = configs.parse_args(['--data-dir', 'ml-1m', '--pipeline-root', 'gs://b/root'])
  assert config.data.data_dir == os.path.join(str(tmp_path), 'ml-1m')
  assert config.local.pipeline_root == 'gs://b/root'


def test_set_up_without_python_3_10_says_what_to_install(tmp_path):
  # A PATH with no python3.10 and no pyenv shims, and PYTHON naming a wrong version.
  env = {'PATH': '/usr/bin:/bin', 'PYTHON': '/bin/false', 'HOME': str(tmp_path)}
  result = subprocess.run(['bash', os.path.join(ROOT, 'scripts', 'make_venv.sh'),
                           str(tmp_path / 'venv')], env=env, capture_output=True, text=True)
  assert result.returncode == 1
  assert 'Python 3.10 is required' in result.stderr
  assert 'pyenv install 3.10' in result.stderr
  assert not os.path.exists(tmp_path / 'venv')


def test_a_release_reads_its_fetched_directory_unless_a_data_dir_is_given(tmp_path):
  assert configs.parse_args(['--release', '1m']).data.data_dir == os.path.join(
      ROOT, 'data', 'movielens', 'ml-1m')
  assert configs.parse_args(['--release', '1m', '--data-dir', str(tmp_path)]
                            ).data.data_dir == str(tmp_path)


def test_an_unknown_release_or_component_is_refused_before_anything_runs(tmp_path, capsys):
  with pytest.raises(SystemExit):
    configs.parse_args(['--release', '2m'])
  assert '--release must be one of 100k, 1m, 20m, 25m, latest-small' in capsys.readouterr().err
  assert runner_local.main(['--output-dir', str(tmp_path), '--until', 'Trainer']) == 1
  assert '--until Trainer: no such component; choose one of MovieLensExampleGen' in (
      capsys.readouterr().err)


def test_a_closed_console_never_stops_a_run():
  """Progress lines to a console that is gone (a closed pipe) are dropped, not raised into
  the code that logged them (the Trainer's epochs log through it)."""
  import io
  import logging
  from pipeline import progress
  stream = io.StringIO()
  handler = progress.ComponentProgress(stream)
  stream.close()
  logging.raiseExceptions, saved = False, logging.raiseExceptions
  try:
    handler.handle(logging.makeLogRecord({'name': 'movielens_tfx.trainer', 'msg': 'epoch 1',
                                          'levelno': logging.INFO}))
  finally:
    logging.raiseExceptions = saved


@pytest.mark.parametrize('flags, message', [
    (['--dropout', '1'], 'dropout must be in [0, 1), not 1.0'),
    (['--user-id-dropout', '-0.1'], 'user_id_dropout must be in [0, 1), not -0.1'),
    (['--patience', '-1'], 'patience must be 0 (off) or more, not -1'),
    (['--softmax', 'full'], "unknown softmax 'full'; choose one of in-batch, catalog, auto"),
    (['--learning-rate-schedule', 'step'],
     "unknown learning-rate schedule 'step'; choose one of constant, cosine"),
    (['--optimizer', 'sgd'], "unknown optimizer 'sgd'; choose one of adagrad, adam, adamw"),
    (['--softmax', 'catalog', '--remove-accidental-hits'],
     'the catalog softmax has neither (use --softmax in-batch)'),
])
def test_out_of_range_training_settings_are_refused_with_the_rule(flags, message, capsys):
  with pytest.raises(SystemExit):
    configs.parse_args(flags)
  assert message in capsys.readouterr().err
