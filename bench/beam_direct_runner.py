"""Which DirectRunner mode runs the local pipeline fastest on this machine?

Runs the whole local pipeline on MovieLens 100k (fresh outputs, cache off) once per mode
per round, modes interleaved so that a noisy neighbour hurts them alike, and prints each
mode's best wall time and its ratio to the fastest. The fastest is the default of
`pipeline/configs.py` (DEFAULT_BEAM_ARGS).

    .venv/bin/python bench/beam_direct_runner.py [--rounds 2] [--data-dir DIR]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = {
    'in_memory': '--direct_running_mode=in_memory --direct_num_workers=1',
    'multi_threading x2': '--direct_running_mode=multi_threading --direct_num_workers=2',
    'multi_processing x2': '--direct_running_mode=multi_processing --direct_num_workers=2',
}


def run_once(beam_args: str, data_dir: str) -> float:
  with tempfile.TemporaryDirectory() as outputs:
    command = [sys.executable, os.path.join(ROOT, 'runner_local.py'), '--data-dir', data_dir,
               '--output-dir', outputs, '--no-cache', '--beam-args', beam_args,
               '--preset', 'large']  # the preset measured; the Trainer does not use Beam
    start = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - start
  if result.returncode != 0:
    raise SystemExit(f'{beam_args} failed:\n{result.stderr[-2000:]}')
  return seconds


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--data-dir', default=os.path.join(ROOT, 'data', 'movielens', 'ml-100k'))
  args = parser.parse_args()
  times = {mode: [] for mode in MODES}
  for round_number in range(1, args.rounds + 1):
    for mode, beam_args in MODES.items():
      times[mode].append(run_once(beam_args, args.data_dir))
      print(f'round {round_number}: {mode:<22} {times[mode][-1]:6.1f} s', flush=True)
  best = {mode: min(seconds) for mode, seconds in times.items()}
  fastest = min(best.values())
  print(f'\n{"DirectRunner mode":<22} {"best wall time":>15} {"vs fastest":>11}')
  for mode, seconds in sorted(best.items(), key=lambda item: item[1]):
    print(f'{mode:<22} {seconds:13.1f} s {seconds / fastest:10.2f}x')


if __name__ == '__main__':
  main()
