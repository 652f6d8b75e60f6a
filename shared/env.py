"""The process environment every entry point sets before TensorFlow is first imported.

Importing a project package never changes the environment; the entry points call
`use_legacy_keras()` first: runner_local.py, runner_kubeflow.py, `python -m inspector`,
tools/, bench/ and tests/conftest.py. The image sets the same variables in its Dockerfile.
"""
import os

# TFRS 0.7.7 refuses Keras 3; TensorFlow 2.16 picks Keras 2 (tf-keras) only when this is
# set before it is first imported.
LEGACY_KERAS = {'TF_USE_LEGACY_KERAS': '1'}
# TensorFlow's C++ log (CUDA plug-in noise on a CPU machine); real failures still raise.
QUIET_TF_LOG = {'TF_CPP_MIN_LOG_LEVEL': '3'}


def use_legacy_keras(quiet: bool = True) -> None:
  """Sets TF_USE_LEGACY_KERAS (and, when `quiet`, TF_CPP_MIN_LOG_LEVEL) unless set already.

  Args:
    quiet: also silence TensorFlow's C++ log.
  """
  for name, value in {**LEGACY_KERAS, **(QUIET_TF_LOG if quiet else {})}.items():
    os.environ.setdefault(name, value)
