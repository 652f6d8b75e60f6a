"""What user features and time alone say about users never seen: group popularity lists.

For the eval ratings of users with no training rating (a run with `--holdout-users`), prints
top-100 accuracy of lists that use nothing but what a new user's request carries: the
most-popular list (the Evaluator's baseline), the most popular among training users of the
same age group, gender, occupation or zip-code prefix (alone, and blended half and half
with the overall list), and the most popular in the days before the rating's time (what a
request at that time could know). Ties go to the overall list's order. Beside
them, the run's own cold-start figures (evaluation.json). A list built from features
cannot be expected to beat these by much: they measure what the features tell.

    .venv/bin/python runner_local.py --output-dir /tmp/ml-holdout --holdout-users 10
    .venv/bin/python bench/cold_start_ceiling.py --output-dir /tmp/ml-holdout
"""
import argparse
import json
import os

import common

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from data import features  # noqa: E402
from shared import names  # noqa: E402

K = 100
GROUPS = {  # name: the key of a rating's user, from the raw features
    'age group': lambda d: d[features.BUCKETIZED_USER_AGE],
    'gender': lambda d: d[features.USER_GENDER],
    'occupation': lambda d: d[features.USER_OCCUPATION_TEXT],
    'zip-code prefix': lambda d: np.array([z[:2] for z in d[features.USER_ZIP_CODE].tolist()]),
    'age group and gender': lambda d: d[features.BUCKETIZED_USER_AGE] * 2 + d[features.USER_GENDER],
}
SPEC = {features.BUCKETIZED_USER_AGE: tf.io.FixedLenFeature([], tf.float32),  # as TFDS stores it
        features.USER_GENDER: tf.io.FixedLenFeature([], tf.int64),
        features.USER_OCCUPATION_TEXT: tf.io.FixedLenFeature([], tf.string),
        features.USER_ZIP_CODE: tf.io.FixedLenFeature([], tf.string)}


def top(counts: np.ndarray, overall: np.ndarray) -> np.ndarray:
  """The K titles with the most counts; ties in the overall list's order (the Evaluator's:
  training ratings, then catalog order)."""
  return np.lexsort((np.arange(len(counts)), -overall, -counts))[:K]


def group_hits(train_keys, train_index, eval_keys, eval_index, overall, blend) -> np.ndarray:
  """Per eval rating: is its title in the top K of its group's training ratings (each
  group's shares plus `blend` times the overall shares)?"""
  hits = np.zeros(len(eval_index), bool)
  for key in np.unique(eval_keys):
    counts = np.bincount(train_index[train_keys == key], minlength=len(overall))
    shares = counts / max(counts.sum(), 1) + blend * overall / overall.sum()
    rows = eval_keys == key
    hits[rows] = np.isin(eval_index[rows], top(shares, overall))
  return hits


def window_hits(train_time, train_index, eval_time, eval_index, overall, days) -> np.ndarray:
  """Per eval rating: is its title in the top K of the training ratings of the `days`
  before its time?"""
  order = np.argsort(train_time)
  times, titles = train_time[order], train_index[order]
  start = np.searchsorted(times, eval_time - days * 86400)
  end = np.searchsorted(times, eval_time, side='right')
  return np.array([
      index in top(np.bincount(titles[a:b], minlength=len(overall)), overall)
      for a, b, index in zip(start, end, eval_index)])


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--output-dir', default=common.configs.DEFAULT_OUTPUT_DIR)
  args = parser.parse_args()
  evaluated = 'RetrievalEvaluator.evaluation'
  try:
    train, eval_, titles = common.latest_raw_examples(args.output_dir, of_run_with=evaluated,
                                                      extra_spec=SPEC)
  except tf.errors.InvalidArgumentError as error:
    raise SystemExit(f'this run has no user features (a CSV-layout release?): {error.message}')
  with open(os.path.join(common.latest_outputs(args.output_dir, names.PIPELINE_NAME, evaluated)[
      evaluated], names.EVALUATION_FILE)) as file:
    evaluation = json.load(file)
  if 'cold_start' not in evaluation:
    raise SystemExit('the latest evaluated run held no users out: run with --holdout-users')

  cold = ~np.isin(eval_[features.USER_ID], train[features.USER_ID])  # the Evaluator's rule
  position = {title: index for index, title in enumerate(titles)}
  train_index = np.array([position.get(t, -1) for t in train[features.MOVIE_TITLE].tolist()])
  train = {name: values[train_index >= 0] for name, values in train.items()}
  train_index = train_index[train_index >= 0]
  eval_ = {name: values[cold] for name, values in eval_.items()}
  eval_index = np.array([position.get(t, -1) for t in eval_[features.MOVIE_TITLE].tolist()])
  overall = np.bincount(train_index, minlength=len(titles)).astype(np.float64)

  rows = {'most popular overall': np.isin(eval_index, top(overall, overall))}
  for name, key in GROUPS.items():
    for blend in (0.0, 1.0):
      label = f'most popular by {name}' + (', blended with overall' if blend else '')
      rows[label] = group_hits(key(train), train_index, key(eval_), eval_index, overall, blend)
  for days in (7, 30, 90):
    rows[f'most popular in the {days} days before the rating'] = window_hits(
        train[features.TIMESTAMP], train_index, eval_[features.TIMESTAMP], eval_index, overall,
        days)

  users = len(np.unique(eval_[features.USER_ID]))
  print(f'{cold.sum():,} eval ratings of {users:,} users never seen in training'
        f', {len(titles):,} titles; top-{K} accuracy:')
  baseline = rows['most popular overall'].mean()
  for label, hits in rows.items():
    print(f'  {label:<60} {hits.mean():.4f}  {hits.mean() / baseline:.2f}x')
  for name, figures in evaluation['cold_start']['top_k'].items():
    label, value = f"the run's Evaluator: {name}", figures[str(K)]
    print(f'  {label:<60} {value:.4f}  {value / baseline:.2f}x')


if __name__ == '__main__':
  main()
