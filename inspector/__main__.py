"""What every run produced, read from ML Metadata: `python -m inspector COMMAND`.

    runs                  every run: start, duration, state, each component ran or cached
    artifacts [--run R]   each component's outputs (type, URI, key properties)
    metrics [--run R]     the evaluation (top-K with and without seen titles, baselines,
                          slices, users never seen) and the gate's checks
    tuning [--run R]      the Tuner's trials (a run with --tune) and the settings it chose
    compare [R1 R2]       two runs side by side: settings, metrics, verdict (latest two)
    lineage [--run R]     the pushed model (or --artifact ID) back to the data it came from
    lists [--run R]       for a few eval users (--users N --seed S, --user ID): their
                          latest titles, the model's top 10 and the most-popular list's,
                          seen titles removed, and the held-out titles each hits
    report [--run R]      a self-contained HTML report of a run (inspector/report.py)

R is a run's number in `runs` (1 is the first, -1 the latest) or its run id. Add --json
for machine-readable output. Reads OUTPUT_DIR/metadata.sqlite (--output-dir,
--metadata-path) of a local run.
"""
import argparse
import json
import os
import sys

from shared import env

env.use_legacy_keras()  # the report reads saved models with TensorFlow

from inspector import lists as user_lists  # noqa: E402
from inspector import report as run_report  # noqa: E402
from inspector import tables  # noqa: E402
from inspector.queries import InspectionError, Inspector  # noqa: E402
from pipeline import configs  # noqa: E402
from shared import names  # noqa: E402


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n')[0], epilog=__doc__.split('\n', 2)[2],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--output-dir', default=configs.DEFAULT_OUTPUT_DIR,
                      help='the local run\'s output directory (default: %(default)s)')
  parser.add_argument('--metadata-path', help='ML Metadata file (default: '
                      'OUTPUT_DIR/metadata.sqlite)')
  parser.add_argument('--pipeline-name', default=names.PIPELINE_NAME)
  parser.add_argument('--json', action='store_true', help='machine-readable output')
  commands = parser.add_subparsers(dest='command', required=True)
  commands.add_parser('runs', help='every run, its state and components')
  for name, text in (('artifacts', 'outputs of a run'), ('metrics', 'evaluation of a run'),
                     ('tuning', "the Tuner's trials of a run"),
                     ('lineage', 'a model back to its data')):
    command = commands.add_parser(name, help=text)
    command.add_argument('--run', help='run number or id (default: the latest)')
  commands.choices['lineage'].add_argument('--artifact', type=int,
                                           help='trace this artifact id instead')
  compare = commands.add_parser('compare', help='two runs side by side')
  compare.add_argument('first', nargs='?', help='run number or id (default: the one before '
                       'the latest)')
  compare.add_argument('second', nargs='?', help='(default: the latest)')
  lists = commands.add_parser('lists', help="a few eval users' lists, model and most popular")
  report = commands.add_parser('report', help='a self-contained HTML report of a run')
  for command in (lists, report):
    command.add_argument('--run', help='run number or id (default: the latest)')
    command.add_argument('--users', type=int, default=user_lists.USERS,
                         help='eval users drawn by the seed (default: %(default)s)')
    command.add_argument('--seed', type=int, default=0, help='the seed of the draw '
                         '(default: %(default)s)')
    command.add_argument('--user', action='append', default=[],
                         help='an eval user to show too (repeatable)')
  report.add_argument('--out', help='the HTML file, or a directory for run-N.html (default: '
                      'reports/ beside the metadata file)')
  for command in commands.choices.values():  # the common options after the command work too
    command.add_argument('--json', action='store_true', default=argparse.SUPPRESS,
                         help='machine-readable output')
    for name in ('--output-dir', '--metadata-path', '--pipeline-name'):
      command.add_argument(name, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)

  metadata_path = args.metadata_path or configs.Local(output_dir=args.output_dir).metadata_path
  try:
    inspector = Inspector(metadata_path, args.pipeline_name)
    if args.command == 'runs':
      result, text = inspector.runs(), tables.format_runs
    elif args.command == 'artifacts':
      result, text = inspector.artifacts(args.run), tables.format_artifacts
    elif args.command == 'metrics':
      result, text = inspector.evaluation(args.run), tables.format_metrics
    elif args.command == 'tuning':
      result, text = inspector.tuning(args.run), tables.format_tuning
    elif args.command == 'compare':
      result, text = inspector.compare(args.first, args.second), tables.format_compare
    elif args.command == 'lineage':
      result, text = inspector.lineage(args.run, args.artifact), tables.format_lineage
    elif args.command == 'lists':
      result, text = user_lists.run_lists(inspector, args.run, args.user, args.users,
                                          args.seed), tables.format_lists
    else:
      path = run_report.write(inspector, args.run, args.out or os.path.join(
          os.path.dirname(metadata_path), 'reports'), args.user, args.users, args.seed)
      result, text = {'report': path}, lambda r: f'Report written: {r["report"]}'
  except InspectionError as error:
    print(f'error: {error}', file=sys.stderr)
    return 2
  except OSError as error:  # an artifact ML Metadata names is gone or unreadable
    print(f'error: cannot read {error.filename or error}: {error.strerror or error}; has the '
          'pipeline root moved or been cleaned since the run?', file=sys.stderr)
    return 2
  print(json.dumps(result, indent=2, default=str) if args.json else text(result))
  return 0


if __name__ == '__main__':
  sys.exit(main())
