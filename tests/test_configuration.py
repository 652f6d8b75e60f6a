"""The configuration in sections: one default per setting, each a flag of the runners, each
section what its component receives, and docs/configuration.md written from the same."""
import dataclasses
import json

import pytest

from modules import hparams
from pipeline import configs
from shared import names
from tools import config_doc

# Every flag runner_local.py had before the sections: scripts, tests and the docs use them.
LOCAL_FLAGS = (
    '--batch-size', '--beam-args', '--cache', '--compare-with-blessed', '--data-dir',
    '--dropout', '--embedding-dim', '--ensemble', '--epochs', '--eval-percent',
    '--holdout-users', '--input-mode', '--layer-sizes', '--layout', '--learning-rate',
    '--learning-rate-schedule', '--logq-correction', '--max-bad-rows', '--max-regression',
    '--max-title-tokens', '--memory-budget-mb', '--metadata-path', '--min-lift', '--min-top100',
    '--movie-features', '--normalize', '--optimizer', '--output-dir', '--patience',
    '--pipeline-name', '--pipeline-root', '--preset', '--release', '--remove-accidental-hits',
    '--seed', '--serving-dir', '--serving-k', '--shuffle-buffer', '--softmax', '--temperature',
    '--timestamp-boundaries', '--tune', '--tune-trials', '--unique-candidates', '--until',
    '--user-features', '--user-id-dropout', '--validation-freq', '--validation-sample',
    '--weight-decay')
LOCAL_ONLY = ('--metadata-path', '--until')


def help_text(runner) -> str:
  """A runner's --help, its lines joined as one."""
  return ' '.join(configs.make_parser(runner).format_help().split())


def option_names(runner) -> set:
  return {flag.name for _, _, group in configs.groups(runner) for flag in group}


def test_docs_configuration_is_written_from_the_flags():
  with open(config_doc.PAGE) as file:
    page = file.read()
  assert config_doc.updated(page) == page, 'run python -m tools.config_doc'
  assert names.REPO_ROOT not in page  # defaults are shown as words, not this clone's paths
  assert config_doc.main(['--check']) == 0


@pytest.mark.parametrize('runner', [configs.LocalConfig, configs.KubeflowConfig])
def test_help_groups_the_flags_by_section_each_with_its_default(runner):
  text = help_text(runner)
  for title, description, group in configs.groups(runner):
    assert f'{title}: {description}' in text
    for flag in group:
      assert f'{flag.name} ' in text and f'(default: {flag.default})' in text, flag.name


def test_every_flag_of_the_local_runner_still_works_and_kubeflow_offers_no_local_one():
  assert set(LOCAL_FLAGS) <= option_names(configs.LocalConfig)
  kubeflow = option_names(configs.KubeflowConfig)
  assert not kubeflow & set(LOCAL_ONLY)
  assert set(LOCAL_FLAGS) - set(LOCAL_ONLY) <= kubeflow
  for flag in LOCAL_ONLY:
    with pytest.raises(SystemExit):
      configs.parse_args([flag, 'x'], runner=configs.KubeflowConfig)


def test_a_flag_not_given_leaves_its_sections_default():
  local = configs.parse_args([])
  kubeflow = configs.parse_args([], runner=configs.KubeflowConfig)
  for name, section in configs.SECTIONS:
    if name not in ('data', 'serving'):  # their paths are the runner's to fill in
      assert getattr(local, name) == section() == getattr(kubeflow, name), name
  # Beam's arguments by the data's size: the local run's when none are given.
  assert dataclasses.replace(local.local, beam_args=None) == configs.Local()
  assert kubeflow.kubeflow == configs.Kubeflow()
  assert local.training == kubeflow.training == hparams.PRESETS[hparams.DEFAULT_PRESET]


def test_each_runner_fills_in_the_paths_left_empty(tmp_path, monkeypatch):
  kubeflow = configs.parse_args(['--output-dir', 'gs://b/m/', '--release', '1m'],
                                runner=configs.KubeflowConfig)
  assert kubeflow.data.data_dir == 'gs://b/m/data/ml-1m'
  assert kubeflow.serving.serving_dir == 'gs://b/m/serving'
  assert kubeflow.kubeflow.pipeline_root == 'gs://b/m/pipeline_root'
  monkeypatch.chdir(tmp_path)  # a local directory given relative is made absolute
  kubeflow = configs.parse_args(['--output-dir', 'kfp'], runner=configs.KubeflowConfig)
  assert kubeflow.data.data_dir == str(tmp_path / 'kfp' / 'data' / 'ml-100k')
  assert kubeflow.kubeflow.pipeline_root == str(tmp_path / 'kfp' / 'pipeline_root')
  local = configs.parse_args(['--output-dir', str(tmp_path), '--serving-dir', 'gs://b/s'])
  assert local.serving.serving_dir == 'gs://b/s'
  assert local.local.logs_dir == str(tmp_path / 'logs')


def test_the_presets_are_the_only_source_of_training_values():
  for field in dataclasses.fields(hparams.TrainingConfig):
    assert field.default is field.default_factory is dataclasses.MISSING, field.name
  config = configs.parse_args(['--preset', 'large', '--epochs', '3', '--no-movie-features'])
  assert config.training == hparams.preset('large', epochs=3, movie_features=False)
  incomplete = hparams.PRESETS['tutorial'].to_json_dict()
  del incomplete['epochs']
  with pytest.raises(ValueError, match='missing training settings: epochs'):
    hparams.TrainingConfig.from_json_dict(incomplete)


@pytest.mark.parametrize('flags, message', [
    (['--eval-percent', '0'], '--eval-percent must be between 1 and 99, not 0'),
    (['--tune-trials', '0'], '--tune-trials must be at least 1, not 0'),
    (['--tune-validation-percent', '100'], '--tune-validation-percent must be between 1 and 99'),
    (['--serving-k', '0'], '--serving-k must be at least 1, not 0'),
    (['--statistics-sample-mb', '-1'], '--statistics-sample-mb cannot be negative'),
    (['--eval-sample', '-1'], '--eval-sample cannot be negative'),
    (['--preset', 'huge'], "unknown preset 'huge'"),
])
def test_a_setting_out_of_range_is_a_usage_error_naming_its_flag(flags, message, capsys):
  with pytest.raises(SystemExit):
    configs.parse_args(flags)
  assert message in capsys.readouterr().err


def test_each_component_receives_its_section():
  from pipeline.pipeline import create_pipeline
  config = configs.parse_args([
      '--eval-percent', '30', '--layout', 'grouplens-100k', '--holdout-users', '5',
      '--max-bad-rows', '2', '--timestamp-boundaries', '7', '--max-title-tokens', '50',
      '--tune', '--tune-trials', '3', '--tune-validation-percent', '20', '--min-lift', '1.5',
      '--min-top100', '0.2', '--max-regression', '0.03', '--serving-k', '20',
      '--serving-dir', '/tmp/served', '--epochs', '4', '--eval-sample', '500',
      '--eval-sample-seed', '3'])
  built = create_pipeline(config, config.local.pipeline_root, config.local.beam_args)
  properties = {c.id: c.exec_properties for c in built.components}

  def custom_config(component):
    values = json.loads(properties[component]['custom_config'])
    del values[names.CODE_VERSION]
    return values

  assert custom_config(names.TRANSFORM) == config.transform.custom_config() == {
      names.TIMESTAMP_BOUNDARIES: 7, names.MAX_TITLE_TOKENS: 50}
  assert custom_config(names.TUNER) == {names.TRAINING: config.training.to_json_dict(),
                                        names.TUNE_TRIALS: 3, names.TUNE_VALIDATION_PERCENT: 20}
  assert custom_config(names.TRAINER) == {names.TRAINING: config.training.to_json_dict(),
                                          names.SERVING_K: 20}
  assert hparams.TrainingConfig.from_json_dict(
      custom_config(names.TRAINER)[names.TRAINING]).epochs == 4
  example_gen = properties[names.EXAMPLE_GEN]
  assert (example_gen['input_base'], example_gen['layout'], example_gen['max_bad_rows'],
          example_gen['holdout_users']) == (config.data.data_dir, 'grouplens-100k', 2, 5)
  assert '"hash_buckets": 30' in example_gen['output_config']
  evaluator = properties[names.EVALUATOR]
  assert (evaluator['min_lift'], evaluator['min_top100'], evaluator['max_regression'],
          evaluator['eval_sample'], evaluator['eval_sample_seed']) == (1.5, 0.2, 0.03, 500, 3)
  assert '/tmp/served' in properties[names.PUSHER]['push_destination']
  assert built.pipeline_info.pipeline_name == config.run.pipeline_name


@pytest.mark.parametrize('size_mb, preset', [(2, 'recommended'), (10, 'large'),
                                              (199, 'large'), (200, 'xlarge')])
def test_with_no_preset_given_the_release_size_chooses_it(tmp_path, size_mb, preset):
  with open(tmp_path / 'ratings.csv', 'wb') as file:  # sparse: the size without the bytes
    file.truncate(size_mb * 2**20)
  config = configs.parse_args(['--data-dir', str(tmp_path)])
  assert config.preset == preset
  assert config.training == hparams.preset(preset)
  chosen = configs.parse_args(['--data-dir', str(tmp_path), '--preset', 'tutorial',
                               '--epochs', '3'])
  assert (chosen.preset, chosen.training.epochs) == ('tutorial', 3)


@pytest.mark.parametrize('size_mb, flags, rate', [
    (64, [], None), (256, [], 0.25), (256, ['--statistics-sample-mb', '128'], 0.5),
    (256, ['--statistics-sample-mb', '0'], None)])
def test_statisticsgen_samples_a_release_larger_than_its_budget(tmp_path, size_mb, flags, rate):
  from pipeline.pipeline import create_pipeline
  with open(tmp_path / 'ratings.csv', 'wb') as file:  # sparse: the size without the bytes
    file.truncate(size_mb * 2**20)
  config = configs.parse_args(['--data-dir', str(tmp_path), *flags])
  assert config.statistics_sample_rate == (rate or 1.0)
  built = create_pipeline(config, config.local.pipeline_root, config.local.beam_args)
  [statistics_gen] = [c for c in built.components if c.id == names.STATISTICS_GEN]
  options = statistics_gen.exec_properties.get('stats_options_json')
  assert (json.loads(options).get('_sample_rate') if options else None) == rate
