"""What a local run prints: a line per component started and finished, and our own messages.

Every log record of every library goes to a log file; the console gets one line when a
component starts, one when it finishes (with its duration, and whether TFX reused a cached
result), the pipeline's own messages ('movielens_tfx' logger) and errors.
"""
import logging
import os
import re
import sys
import time
from typing import Dict, List, Optional, TextIO

from absl import logging as absl_logging

from shared import names

OWN_LOGGER = names.LOGGER
_RUNNING = re.compile(r'Component (\S+) is running\.')
_FINISHED = re.compile(r'Component (\S+) is finished\.')
_CACHED = re.compile(r'A cached execution \d+ is used\.')


class ComponentProgress(logging.Handler):
  """A console handler that shows a run's progress instead of its raw log."""

  def __init__(self, stream: TextIO = None):
    super().__init__(level=logging.DEBUG)
    self._stream = stream  # None: whatever sys.stdout is when a line is printed
    self._started: Dict[str, float] = {}
    self._current: Optional[str] = None
    self._cached = False
    self.finished: List[Dict[str, object]] = []  # one dict per finished component

  def _print(self, text: str) -> None:
    print(text, file=self._stream or sys.stdout, flush=True)

  def emit(self, record: logging.LogRecord) -> None:
    try:
      self._show(record)
    except Exception:  # pylint: disable=broad-except  (a console gone must not stop a run)
      self.handleError(record)

  def _show(self, record: logging.LogRecord) -> None:
    message = record.getMessage()
    running, finished = _RUNNING.match(message), _FINISHED.match(message)
    if running:
      self._current, self._cached = running.group(1), False
      self._started[self._current] = time.monotonic()
      self._print(f'[{time.strftime("%H:%M:%S")}] {self._current} ...')
    elif finished:
      name = finished.group(1)
      seconds = time.monotonic() - self._started.get(name, time.monotonic())
      self.finished.append({'component': name, 'seconds': seconds, 'cached': self._cached})
      note = ' (cached: reused an earlier run)' if self._cached else ''
      self._print(f'[{time.strftime("%H:%M:%S")}] {name} finished in {seconds:.1f} s{note}')
    elif _CACHED.match(message):
      self._cached = True
    elif record.name == OWN_LOGGER or record.name.startswith(OWN_LOGGER + '.'):
      prefix = '' if record.levelno < logging.WARNING else f'{record.levelname}: '
      indented = message.replace('\n', '\n    ')
      self._print(f'    {prefix}{indented}')


def setup(logs_dir: str, stream: TextIO = None) -> ComponentProgress:
  """Sends every log record to a new file under logs_dir and progress to the console.

  Returns the console handler, which also remembers each finished component.
  """
  os.makedirs(logs_dir, exist_ok=True)
  log_path = os.path.join(logs_dir, time.strftime('run-%Y%m%d-%H%M%S.log'))
  root = logging.getLogger()
  for handler in list(root.handlers):
    root.removeHandler(handler)
  to_file = logging.FileHandler(log_path)
  to_file.setFormatter(logging.Formatter('%(asctime)s %(levelname)s %(name)s: %(message)s'))
  progress = ComponentProgress(stream)
  root.addHandler(to_file)
  root.addHandler(progress)
  root.setLevel(logging.INFO)
  # TFX logs through absl. TensorFlow's saver resets absl's verbosity to what absl reports,
  # which is WARNING until set: set INFO there, or component progress goes silent.
  absl_logging.set_verbosity(absl_logging.INFO)
  logging.captureWarnings(True)  # library warnings go to the file, not the console
  progress.log_path = log_path
  return progress
