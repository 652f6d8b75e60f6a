"""Where a Trainer run's time went, from its history.json: set-up, each pair's first epoch
(tracing included), its later epochs, its validations, the epochs trained after the kept
one (early stopping's wait), and the export.

An epoch's `seconds` in the history is the time since its pair began training, taken as
the epoch ends and before its validation; so the gap after a validated epoch holds that
validation and the next epoch, and a validation's cost is the median of those gaps less
the median of the others.

    .venv/bin/python bench/trainer_breakdown.py --output-dir /tmp/preset-speed/base
"""
import argparse
import json
import os
import statistics

import common

from shared import names  # noqa: E402


def pair_breakdown(history, kept_epoch):
  """{first epoch, later epoch (median), validation (median), epochs, epochs after kept}."""
  ends = [entry['seconds'] for entry in history]
  gaps = [later - earlier for earlier, later in zip(ends, ends[1:])]
  after_validation = [gap for entry, gap in zip(history, gaps) if 'val_top_k' in entry]
  plain = [gap for entry, gap in zip(history, gaps) if 'val_top_k' not in entry]
  epoch = statistics.median(plain) if plain else float('nan')
  validation = statistics.median(after_validation) - epoch if after_validation else 0.0
  return {'first epoch': ends[0], 'later epoch': epoch, 'validation': validation,
          'epochs': len(history), 'validations': sum('val_top_k' in e for e in history),
          'epochs after the kept one': len(history) - kept_epoch, 'training': ends[-1]}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--output-dir', default=common.configs.DEFAULT_OUTPUT_DIR)
  args = parser.parse_args()
  model_run = f'{names.TRAINER}.model_run'
  outputs = common.latest_outputs(args.output_dir, names.PIPELINE_NAME, model_run)
  with open(os.path.join(outputs[model_run], names.HISTORY_FILE)) as file:
    report = json.load(file)
  pairs = report.get('pairs') or [{'seed': report['config']['seed'],
                                   'best_epoch': report['best_epoch'],
                                   'history': report['history']}]
  seconds = report['seconds']
  print(f'Trainer: set-up {seconds["set_up"]:.1f} s, training {seconds["training"]:.1f} s, '
        f'export {seconds["export"]:.1f} s')
  for pair in pairs:
    parts = pair_breakdown(pair['history'], pair['best_epoch'])
    print(f'pair of seed {pair["seed"]}: {parts["epochs"]} epochs in {parts["training"]:.1f} s '
          f'(kept epoch {pair["best_epoch"]}, {parts["epochs after the kept one"]} after it); '
          f'first epoch {parts["first epoch"]:.1f} s, later epochs {parts["later epoch"]:.2f} s '
          f'each, {parts["validations"]} validations {parts["validation"]:.2f} s each')


if __name__ == '__main__':
  main()
