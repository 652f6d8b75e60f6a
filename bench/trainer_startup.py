"""The Trainer's start-up cost: the first epoch and first validation, with AutoGraph
rewriting the training step (as before) and without (as now), each in a fresh process.

Prints, per variant, the median over --repeats processes (taking turns, so noise hits both
alike) of: building the towers, the first epoch (tracing included), the second epoch, the
first validation (tracing the towers' predict) and the second; then the ratios. The data is
the latest pipeline run's (run `make run` first, or --output-dir of a run with Transform).

    .venv/bin/python bench/trainer_startup.py
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import common  # noqa: F401  (sets up paths and environment first)

PHASES = ('build', 'epoch 1', 'epoch 2', 'validation 1', 'validation 2')


def measure(output_dir: str, converted: bool) -> dict:
  """One variant's phases, in this process (a fresh one: AutoGraph caches conversions)."""
  import tensorflow as tf
  from modules import fitting, hparams, model
  if converted:  # what the code did before: AutoGraph rewrites the step and predict
    for cls, name in ((model.TwoTowerModel, 'train_step'), (model.Tower, 'predict_step')):
      setattr(cls, name, getattr(cls, name).__wrapped__)
  _, vocabularies, train, eval_ = common.latest_training_inputs(output_dir)
  seconds = {}
  start = time.monotonic()
  pair = fitting.TowerPair(hparams.preset('large'), vocabularies, train, eval_)
  dataset = pair.dataset()
  seconds['build'] = time.monotonic() - start
  for phase, run in (('epoch 1', lambda: pair.model.fit(dataset, epochs=1, verbose=0)),
                     ('epoch 2', lambda: pair.model.fit(dataset, epochs=1, verbose=0)),
                     ('validation 1', pair.validate), ('validation 2', pair.validate)):
    start = time.monotonic()
    run()
    seconds[phase] = time.monotonic() - start
  del tf
  return seconds


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--repeats', type=int, default=2, help='processes per variant')
  parser.add_argument('--output-dir', default=common.configs.DEFAULT_OUTPUT_DIR)
  parser.add_argument('--variant', choices=('converted', 'unconverted'), help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.variant:
    print(json.dumps(measure(args.output_dir, args.variant == 'converted')))
    return
  runs = {'converted': [], 'unconverted': []}
  for _ in range(args.repeats):
    for variant in runs:
      result = subprocess.run([sys.executable, __file__, '--variant', variant, '--output-dir',
                               args.output_dir], capture_output=True, text=True, check=True,
                              env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
      runs[variant].append(json.loads(result.stdout.strip().splitlines()[-1]))
  medians = {variant: {phase: statistics.median(r[phase] for r in results) for phase in PHASES}
             for variant, results in runs.items()}
  print(f'seconds (median of {args.repeats} fresh processes per variant, taking turns)')
  print(f'{"phase":<14}{"AutoGraph (before)":>20}{"no AutoGraph (now)":>20}{"ratio":>8}')
  for phase in PHASES:
    before, now = medians['converted'][phase], medians['unconverted'][phase]
    print(f'{phase:<14}{before:>20.2f}{now:>20.2f}{before / now:>8.2f}')


if __name__ == '__main__':
  main()
