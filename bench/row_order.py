"""An epoch's order of row numbers: tf.data's shuffle buffer against a NumPy permutation.

The in-memory training input gathers each batch's rows by row number, so each epoch needs
the row numbers in a new order. This measures the two ways of making it, each in its own
process (so that the memory is its own): peak resident memory above the process's start,
bytes per row, and seconds per pass over N rows in batches of 8,192, side by side.
`modules/inputs.py` uses the permutation.

    .venv/bin/python bench/row_order.py --rows 5000000
"""
import argparse
import os
import subprocess
import sys
import time

BATCH = 8192


def measure(rows: int, way: str, passes: int = 2) -> str:
  """Runs in the child process: one way's peak memory and seconds per pass."""
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from shared import env
  env.use_legacy_keras()
  import psutil
  import tensorflow as tf
  from modules import inputs
  process = psutil.Process()
  start_rss = process.memory_info().rss
  if way == 'tf.data shuffle':
    dataset = tf.data.Dataset.range(rows).shuffle(rows, seed=1).batch(BATCH)
  else:
    dataset = inputs.shuffled_row_numbers(rows, BATCH, seed=1)
  peak, start = 0, time.monotonic()
  for _ in range(passes):
    for step, _ in enumerate(dataset):
      if step % 100 == 0:
        peak = max(peak, process.memory_info().rss - start_rss)
  seconds = (time.monotonic() - start) / passes
  return f'{peak / 2**30:6.2f} GiB {peak / rows:6.0f} bytes/row {seconds:7.2f} s/pass'


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rows', type=int, default=5_000_000)
  parser.add_argument('--way', help=argparse.SUPPRESS)  # set in the child processes
  args = parser.parse_args()
  if args.way:
    print(measure(args.rows, args.way))
    return
  print(f'{args.rows:,} rows, batches of {BATCH:,}: peak memory above the start, per pass')
  for way in ('tf.data shuffle', 'NumPy permutation'):
    result = subprocess.run([sys.executable, __file__, '--rows', str(args.rows), '--way', way],
                            capture_output=True, text=True, check=True)
    print(f'  {way:<18} {result.stdout.strip().splitlines()[-1]}')


if __name__ == '__main__':
  main()
