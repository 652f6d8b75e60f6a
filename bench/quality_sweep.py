"""Trains several configurations on the latest pipeline run's data and prints their curves.

Each argument is one configuration: a preset and training flags, as runner_local.py takes
them (the same Trainer, on the Transform output and catalog of the latest run; run
`make run` first). Prints each configuration's validation top-100 at every validation,
the kept towers' figure (the best validated epoch's; for `--ensemble N`, the pairs side by
side) and the final one, its seconds per epoch, and the most-popular baseline; with
`--seeds`, each configuration once per seed and the mean and spread of its kept figure.

    .venv/bin/python bench/quality_sweep.py \\
        "--optimizer adagrad --learning-rate 0.1 --epochs 40" \\
        "--optimizer adam --learning-rate 0.002 --epochs 30"
    .venv/bin/python bench/quality_sweep.py --seeds 42,1,2 -- "" "--preset large --user-features"
    .venv/bin/python bench/quality_sweep.py --output-dir /tmp/run1m -- "--preset large"
"""
import argparse
import dataclasses
import shlex
import statistics
import time

import common

from modules import features, fitting, hparams, metrics  # noqa: E402
from pipeline import configs  # noqa: E402
from shared import names  # noqa: E402


def parse(flags: str) -> hparams.TrainingConfig:
  return configs.parse_args(shlex.split(flags)).training


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--output-dir', default=common.configs.DEFAULT_OUTPUT_DIR,
                      help='the pipeline outputs whose latest run is trained on '
                      '(default: %(default)s)')
  parser.add_argument('--seeds', help='comma-separated seeds: each configuration once per '
                      'seed (default: the configuration\'s own)')
  # REMAINDER: a configuration may start with '--'.
  parser.add_argument('configurations', nargs=argparse.REMAINDER,
                      help='training flags, one string each ("" for the preset as it is)')
  args = parser.parse_args()
  if args.configurations[:1] == ['--']:  # `--seeds 1,2 -- "--flags"`: the '--' ends options
    args.configurations = args.configurations[1:]
  _, vocabularies, train, eval_ = common.latest_training_inputs(args.output_dir)
  seeds = [int(seed) for seed in args.seeds.split(',')] if args.seeds else [None]
  rows = []
  for flags in args.configurations:
    bests = []
    for seed in seeds:
      config = parse(flags)
      if seed is not None:
        config = dataclasses.replace(config, seed=seed)
      start = time.monotonic()
      result = fitting.fit(config, vocabularies, train, eval_)
      seconds = time.monotonic() - start
      curves = [[(e['epoch'], e['val_top_k'][names.GATE_KEY]) for e in pair.history
                 if 'val_top_k' in e] for pair in result.pairs]
      # The kept towers' figure: the best validated epoch's, or the pairs side by side.
      kept = (result.kept_epoch, result.kept_top_k[names.GATE_KEY])
      bests.append(kept[1])
      unseen = unseen_top100(result, train, vocabularies.titles)
      epochs = sum(len(pair.history) for pair in result.pairs)
      rows.append((flags, config.seed, curves[0][-1][1], kept, unseen, seconds / epochs))
      print(f'{flags} (seed {config.seed}): ' + '; '.join(
          ', '.join(f'{epoch}: {value:.4f}' for epoch, value in curve) for curve in curves)
            + (f'; side by side {kept[1]:.4f}' if len(curves) > 1 else '')
            + f'; kept towers, seen titles removed: {unseen:.4f}', flush=True)
    if len(bests) > 1:
      print(f'{flags}: best top-100 mean {statistics.mean(bests):.4f}, '
            f'{min(bests):.4f} to {max(bests):.4f} over seeds {args.seeds}', flush=True)
  baseline = result.popularity_baseline_top_k[names.GATE_KEY]
  print('\n| configuration | seed | final top-100 | best (epoch) | seen removed | s/epoch |\n'
        '| --- | --- | --- | --- | --- | --- |')
  for flags, seed, final, (epoch, value), unseen, per_epoch in rows:
    print(f'| `{flags}` | {seed} | {final:.4f} | {value:.4f} ({epoch}) | {unseen:.4f} '
          f'| {per_epoch:.2f} |')
  print(f'| most popular (baseline) | | {baseline:.4f} | | | |')


def unseen_top100(result: fitting.FitResult, train, titles) -> float:
  """Top-100 of the kept towers with each user's training titles removed (the Evaluator's
  `top_k_unseen`, on the validation sample); `train` in memory, `titles` the catalog's."""
  validation = result.validation
  seen = metrics.seen_titles(
      train[features.USER_INDEX].reshape(-1),
      fitting.catalog_index(result.pairs[0].candidate_tower, train[features.MOVIE_TITLE]),
      validation.data[features.USER_INDEX].reshape(-1))
  scores = metrics.embedding_scores(fitting.embed_queries(result.query_tower, validation.data),
                                    fitting.embed_candidates(result.candidate_tower, titles))
  ranks = metrics.ranks_of_truth(scores, validation.true_index, seen)
  return metrics.top_k(ranks, (names.GATE_K,))[names.GATE_KEY]


if __name__ == '__main__':
  main()
