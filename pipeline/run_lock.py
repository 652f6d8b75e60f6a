"""One local run at a time per ML Metadata store.

Two runs writing one SQLite ML Metadata file and one pipeline root at once would race on
both (TFX's local runner takes no lock). The lock is an advisory `flock` on a file beside
the metadata file, so the operating system releases it when its process ends, however it
ends (a run killed with `kill -9` leaves no stale lock). The file holds who took it, so a
refused run can say which run holds the directory.
"""
import contextlib
import fcntl
import os
import sys
import time


class RunInProgressError(RuntimeError):
  """Another run holds the lock; the message names it."""


def lock_path(metadata_path: str) -> str:
  return metadata_path + '.lock'


@contextlib.contextmanager
def hold(metadata_path: str, output_dir: str):
  """Holds the lock of `metadata_path` for the duration, or raises RunInProgressError."""
  path = lock_path(metadata_path)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 4096, 0).decode(errors='replace').strip() or 'unknown'
      raise RunInProgressError(
          f'another run is using {output_dir} ({holder}); wait for it to finish, or give '
          'this run another --output-dir') from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, (f'pid {os.getpid()}, started {time.strftime("%Y-%m-%d %H:%M:%S")}: '
                   f'{" ".join(sys.argv)}\n').encode(), 0)
    yield
  finally:
    os.close(fd)  # releases the lock
