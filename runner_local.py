"""Runs the pipeline on this machine: LocalDagRunner, Beam's DirectRunner, SQLite ML Metadata.

    python runner_local.py                 # MovieLens 100k from data/movielens/ml-100k
    python runner_local.py --help          # every setting, with its default
"""
import sys

from shared import env

env.use_legacy_keras()  # before anything imports TensorFlow

from pipeline import configs, local  # noqa: E402


def main(argv=None) -> int:
  """Runs the pipeline as the command line configures it.

  Args:
    argv: the flags (default: sys.argv's); `--help` lists them by section.

  Returns:
    The exit code: 0 if the run succeeded.
  """
  return local.run_and_report(configs.parse_args(argv, __doc__.split('\n')[0]))


if __name__ == '__main__':
  sys.exit(main())
