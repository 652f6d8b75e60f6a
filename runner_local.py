"""Runs the pipeline on this machine: LocalDagRunner, Beam's DirectRunner, SQLite ML Metadata.

    python runner_local.py                 # MovieLens 100k from data/movielens/ml-100k
    python runner_local.py --help          # every setting, with its default
"""
import os
import sys

# TensorFlow's C++ log (CUDA plug-in noise on a CPU machine); real failures still raise.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from pipeline import configs, local  # noqa: E402


def main(argv=None) -> int:
  return local.run_and_report(configs.parse_args(argv, __doc__.split('\n')[0]))


if __name__ == '__main__':
  sys.exit(main())
