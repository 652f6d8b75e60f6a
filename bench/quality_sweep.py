"""Trains several configurations on the latest pipeline run's data and prints their curves.

Each argument is one configuration: a preset and training flags, as runner_local.py takes
them (the same Trainer, on the Transform output and catalog of the latest run; run
`make run` first). Prints each configuration's validation top-100 at every validation,
its best and final figures, its seconds per epoch, and the most-popular baseline.

    .venv/bin/python bench/quality_sweep.py \\
        "--optimizer adagrad --learning-rate 0.1 --epochs 40" \\
        "--optimizer adam --learning-rate 0.002 --epochs 30"
"""
import argparse
import shlex
import time

import common

from modules import hparams, training  # noqa: E402
from pipeline import configs  # noqa: E402


def parse(flags: str) -> hparams.TrainingConfig:
  parser = argparse.ArgumentParser(prog='configuration')
  configs.add_flags(parser)
  return configs.from_flags(parser.parse_args(shlex.split(flags))).training


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('configurations', nargs='+', help='training flags, one string each')
  args = parser.parse_args()
  _, vocabularies, train, eval_ = common.latest_training_inputs()
  rows = []
  for flags in args.configurations:
    config = parse(flags)
    trainer = training.TwoTowerFit(config, vocabularies, train, eval_)
    start = time.monotonic()
    history = trainer.fit()
    seconds = time.monotonic() - start
    curve = [(e['epoch'], e['val_top_k']['100']) for e in history if 'val_top_k' in e]
    best = max(curve, key=lambda point: point[1])
    rows.append((flags, curve[-1][1], best, seconds / config.epochs))
    print(f'{flags}: ' + ', '.join(f'{epoch}: {value:.4f}' for epoch, value in curve),
          flush=True)
  baseline = trainer.popularity_baseline()['100']
  print('\n| configuration | final top-100 | best (epoch) | s/epoch |\n| --- | --- | --- | --- |')
  for flags, final, (epoch, value), per_epoch in rows:
    print(f'| `{flags}` | {final:.4f} | {value:.4f} ({epoch}) | {per_epoch:.2f} |')
  print(f'| most popular (baseline) | {baseline:.4f} | | |')


if __name__ == '__main__':
  main()
