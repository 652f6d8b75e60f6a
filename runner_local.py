"""Runs the pipeline on this machine: LocalDagRunner, Beam's DirectRunner, SQLite ML Metadata.

    python runner_local.py                 # MovieLens 100k from data/movielens/ml-100k
    python runner_local.py --help          # every setting, with its default
"""
import argparse
import logging
import os
import sys

# TensorFlow's C++ log (CUDA plug-in noise on a CPU machine); real failures still raise.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from pipeline import configs, metadata, progress  # noqa: E402  (sets TF_USE_LEGACY_KERAS)


def parse_args(argv=None) -> configs.PipelineConfig:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  configs.add_flags(parser)
  args = parser.parse_args(argv)
  try:
    return configs.from_flags(args)
  except ValueError as error:  # a setting out of range: say so before anything runs
    parser.error(str(error))


def run(config: configs.PipelineConfig) -> None:
  from tfx import v1 as tfx  # imported after logging is set up: TFX logs on import
  from tfx.orchestration.pipeline import RunOptions
  from pipeline.pipeline import create_pipeline

  os.makedirs(os.path.dirname(config.metadata_path), exist_ok=True)
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      config.metadata_path)
  pipeline = create_pipeline(config, connection)
  run_options = None
  if config.until:
    ids = [component.id for component in pipeline.components]
    if config.until not in ids:
      raise ValueError(f'--until {config.until}: no such component; choose one of '
                       f'{", ".join(ids)}')
    run_options = RunOptions(to_nodes=[config.until])
  tfx.orchestration.LocalDagRunner().run(pipeline, run_options=run_options)


def main(argv=None) -> int:
  config = parse_args(argv)
  reporter = progress.setup(config.logs_dir)
  print(f'Pipeline {config.pipeline_name}: data {config.data_dir}\n'
        f'  artifacts under {config.pipeline_root}\n'
        f'  ML Metadata in {config.metadata_path}\n'
        f'  full log in {reporter.log_path}')
  try:
    run(config)
  except Exception as error:  # pylint: disable=broad-except
    logging.getLogger('runner').error('The run failed', exc_info=True)  # to the log file
    print(f'\nThe run failed: {type(error).__name__}: {error}\n'
          f'(traceback and full log: {reporter.log_path})', file=sys.stderr)
    return 1
  ran = [c for c in reporter.finished if not c['cached']]
  print(f'\nDone: {len(reporter.finished)} components, {len(ran)} ran, '
        f'{len(reporter.finished) - len(ran)} reused from the cache. This run produced:')
  store = metadata.connect(config.metadata_path)
  outputs = metadata.run_outputs(store, config.pipeline_name,
                                 metadata.runs(store, config.pipeline_name)[-1])
  for output in outputs:
    print(f'  {output.component}.{output.key} ({output.type}): {output.uri}')
  summary = push_summary(outputs)
  if summary:
    print(summary)
  return 0


def push_summary(outputs) -> str:
  """What the Pusher did, in a sentence."""
  pushed = next((o for o in outputs if o.type == 'PushedModel'), None)
  if pushed is None:
    return ''
  if pushed.properties.get('pushed') == 1:
    return (f'\nThe model is served as version {pushed.properties["pushed_version"]}: '
            f'{pushed.properties["pushed_destination"]}')
  return ('\nNothing pushed: the Evaluator did not bless this model (its checks are printed '
          'above and kept in its evaluation.json).')


if __name__ == '__main__':
  sys.exit(main())
