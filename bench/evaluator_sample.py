r"""The Evaluator on every eval rating against its seeded sample (`--eval-sample`), side by side.

Runs the RetrievalEvaluator's own code (components/evaluator: reading both splits,
ranking.evaluate, ranking.eval_sample) on the latest trained model of a pipeline's outputs:
the ranking of all the eval ratings, then of a seeded sample of them, alternately --repeat
times, and prints the seconds of each, their ratio, the gate's top-100 on each with its
binomial standard error, and the time of what a sample cannot shorten (reading the splits:
the train split is read whole, for each user's seen titles and the popularity list).

    .venv/bin/python runner_local.py --data-dir /tmp/scale-levers/r1m \
        --output-dir /tmp/scale-levers/run1m --preset large --epochs 1 --until CatalogTrainer
    .venv/bin/python bench/evaluator_sample.py --output-dir /tmp/scale-levers/run1m \
        --sample 10000

At 25M the default sample, 250,000, is 5% of the 5 million eval ratings; 10,000 is the same
share of the 1M release's 200,280.
"""
import argparse
import json
import time

import common  # noqa: F401  (sets up paths and environment first)

from tfx.types import standard_artifacts  # noqa: E402
from tfx.utils import path_utils  # noqa: E402

from components.evaluator import executor, ranking  # noqa: E402
from shared import names  # noqa: E402


def artifact(kind, uri: str, split_names=None):
  found = kind()
  found.uri = uri
  if split_names:
    found.split_names = json.dumps(split_names)
  return found


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--output-dir', required=True, help='a pipeline run with a trained model')
  parser.add_argument('--sample', type=int, default=10_000, help='eval ratings in the sample')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--repeat', type=int, default=2)
  args = parser.parse_args()
  outputs = common.latest_outputs(args.output_dir, names.PIPELINE_NAME,
                                  f'{names.TRAINER}.model')
  start = time.monotonic()
  ratings = executor.read_eval_ratings(
      artifact(standard_artifacts.Examples, outputs[f'{names.EXAMPLE_GEN}.examples'],
               [names.TRAIN_SPLIT, names.EVAL_SPLIT]),
      artifact(standard_artifacts.Schema, outputs[f'{names.SCHEMA_GEN}.schema']))
  read_seconds = time.monotonic() - start
  model = ranking.ServedModel(path_utils.serving_model_path(outputs[f'{names.TRAINER}.model']))
  sampled, recorded = ranking.eval_sample(ratings, args.sample, args.seed)
  print(f'read both splits in {read_seconds:.1f} s; {recorded["of"]:,} eval ratings, '
        f'sample {recorded["ratings"]:,} (seed {recorded["seed"]}), '
        f'{len(model.titles):,} candidate titles')
  rows = []
  for _ in range(args.repeat):
    row = {}
    for name, these in (('all', ratings), ('sample', sampled)):
      start = time.monotonic()
      report = ranking.evaluate(these, model)
      top = report['top_k']['model'][names.GATE_KEY]
      row[name] = (time.monotonic() - start, top, ranking.standard_error(top, len(these.title)))
    rows.append(row)
    print(f'ranking: all {row["all"][0]:.1f} s, sample {row["sample"][0]:.1f} s '
          f'({row["sample"][0] / row["all"][0]:.3f}x)', flush=True)
  print(f'\n{"":<8} {"seconds":>8} {"top-100":>8} {"std err":>8}')
  for name in ('all', 'sample'):
    seconds, top, error = rows[-1][name]
    print(f'{name:<8} {seconds:8.1f} {top:8.4f} {error:8.4f}')
  print(f'sample/all, each repeat: '
        + ', '.join(f'{r["sample"][0] / r["all"][0]:.3f}x' for r in rows)
        + f'; reading the splits (not sampled): {read_seconds:.1f} s')


if __name__ == '__main__':
  main()
