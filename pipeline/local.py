"""A local run: the pipeline on LocalDagRunner with SQLite ML Metadata, its progress on the
console, and what it produced. runner_local.py and tools/experiment.py call `run_and_report`.

Around the run: a lock, so that a second run on the same output directory refuses at once
(pipeline/run_lock.py), and the check of cached artifacts' files before TFX reuses them
(pipeline/artifact_check.py).
"""
import logging
import os
import shlex
import sys

from pipeline import metadata
from pipeline import artifact_check, configs, progress, run_lock
from shared import names


def run(config: configs.LocalConfig) -> None:
  """Runs the pipeline (up to `config.local.until`); raises what a failed component raised.

  Args:
    config: the local run's configuration.
  """
  from tfx import v1 as tfx  # imported after logging is set up: TFX logs on import
  from tfx.orchestration.pipeline import RunOptions
  from pipeline.pipeline import create_pipeline

  local = config.local
  os.makedirs(os.path.dirname(local.metadata_path), exist_ok=True)
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      local.metadata_path)
  pipeline = create_pipeline(config, local.pipeline_root, local.beam_args, connection)
  run_options = None
  if local.until:
    ids = [component.id for component in pipeline.components]
    if local.until not in ids:
      raise ValueError(f'--until {local.until}: no such component; choose one of '
                       f'{", ".join(ids)}')
    run_options = RunOptions(to_nodes=[local.until])
  tfx.orchestration.LocalDagRunner().run(pipeline, run_options=run_options)


def _share(rate: float) -> str:
  return 'all' if rate >= 1 else f'a sample of {rate:.1%}'


def run_and_report(config: configs.LocalConfig) -> int:
  """Runs the pipeline, printing its progress and then its outputs.

  Args:
    config: the local run's configuration (configs.parse_args).

  Returns:
    0 if the run succeeded, 1 if not (the reason printed).
  """
  local, name = config.local, config.run.pipeline_name
  reporter = progress.setup(local.logs_dir)
  print(f'Pipeline {name}: data {config.data.data_dir}\n'
        f'  artifacts under {local.pipeline_root}\n'
        f'  ML Metadata in {local.metadata_path}\n'
        f'  Beam arguments: {shlex.join(local.beam_args) or "none (the DirectRunner in memory)"}\n'
        f'  training preset: {config.preset} (--preset to choose another)\n'
        f'  StatisticsGen reads {_share(config.statistics_sample_rate)} of the examples '
        f'(--statistics-sample-mb)\n'
        f'  full log in {reporter.log_path}')
  try:
    with run_lock.hold(local.metadata_path, local.output_dir):
      damaged = artifact_check.check(local.metadata_path)
      if damaged and config.run.cache:
        raise artifact_check.DamagedArtifactsError(artifact_check.explain(damaged))
      try:
        run(config)
      finally:  # a failed run's completed components are reusable too
        artifact_check.record(local.metadata_path, name)
  except (run_lock.RunInProgressError, artifact_check.DamagedArtifactsError) as error:
    print(f'\nerror: {error}', file=sys.stderr)
    return 1
  except Exception as error:  # pylint: disable=broad-except
    # The traceback to the log file; the console gets the sentence below.
    logging.getLogger(f'{names.LOGGER}.runner').error('The run failed', exc_info=True)
    print(f'\nThe run failed: {type(error).__name__}: {error}\n'
          f'(traceback and full log: {reporter.log_path})', file=sys.stderr)
    return 1
  ran = [c for c in reporter.finished if not c['cached']]
  print(f'\nDone: {len(reporter.finished)} components, {len(ran)} ran, '
        f'{len(reporter.finished) - len(ran)} reused from the cache. This run produced:')
  store = metadata.connect(local.metadata_path)
  outputs = metadata.run_outputs(store, name, metadata.runs(store, name)[-1])
  for output in outputs:
    print(f'  {output.component}.{output.key} ({output.type}): {output.uri}')
  summary = push_summary(outputs)
  if summary:
    print(summary)
  return 0


def push_summary(outputs) -> str:
  """What the Pusher did, in a sentence.

  Args:
    outputs: the run's outputs (metadata.run_outputs).

  Returns:
    The sentence, or '' when the run had no Pusher.
  """
  pushed = next((o for o in outputs if o.type == 'PushedModel'), None)
  if pushed is None:
    return ''
  if pushed.properties.get(names.PUSHED) == 1:
    return (f'\nThe model is served as version {pushed.properties[names.PUSHED_VERSION]}: '
            f'{pushed.properties[names.PUSHED_DESTINATION]}')
  return ('\nNothing pushed: the Evaluator did not bless this model (its checks are printed '
          'above and kept in its evaluation.json).')
