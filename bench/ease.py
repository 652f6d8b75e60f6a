"""A linear item-to-item reference: EASE (Steck, 2019) on a run's own train/eval split.

Fits EASE's closed form B = I - P / diag(P), P = (X'X + lambda I)^-1, on the binary
users-by-titles matrix of the train split, scores each eval rating's user against every
title, removes the titles the user rated in training (the truth is never removed) and
prints top-K accuracy beside the run's own Evaluator figures with seen titles removed
(evaluation.json, `top_k_unseen`): the same split, the same ranking rule (modules/metrics).

    .venv/bin/python bench/ease.py --output-dir /tmp/run1m --lambda 500
"""
import argparse
import json
import os

import common  # noqa: F401  (sets up paths and environment first)

import numpy as np  # noqa: E402

from modules import metrics  # noqa: E402
from shared import names  # noqa: E402


def ease_ranks(train, eval_, titles, regularization: float) -> np.ndarray:
  """Each eval rating's rank of its title under EASE, the user's training titles removed."""
  position = {title: index for index, title in enumerate(titles)}
  users = {user: row for row, user in enumerate(sorted(set(train['user_id'].tolist())))}
  x = np.zeros((len(users), len(titles)), np.float32)
  x[[users[u] for u in train['user_id'].tolist()],
    [position[t] for t in train['movie_title'].tolist()]] = 1
  gram = (x.T @ x).astype(np.float64)
  gram[np.diag_indices_from(gram)] += regularization
  p = np.linalg.inv(gram)
  b = (-p / np.diag(p)).astype(np.float32)
  b[np.diag_indices_from(b)] = 0
  known = np.array([user in users for user in eval_['user_id'].tolist()])
  rows = np.array([users.get(user, 0) for user in eval_['user_id'].tolist()])
  truth = np.array([position[t] for t in eval_['movie_title'].tolist()])
  by_row = [np.flatnonzero(row) for row in x]  # one array per user, shared by their ratings
  empty = np.zeros(0, np.int64)
  seen = [by_row[row] if ok else empty for row, ok in zip(rows, known)]
  ranks = metrics.ranks_of_truth(lambda chunk: x[rows[chunk]] @ b, truth, seen)
  ranks[~known] = len(titles)  # EASE knows nothing of users unseen in training
  return ranks


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--output-dir', default=common.configs.DEFAULT_OUTPUT_DIR)
  parser.add_argument('--lambda', dest='regularization', type=float, default=500.0)
  args = parser.parse_args()
  # The split and the evaluation of one run: the newest that evaluated a model.
  evaluated = 'RetrievalEvaluator.evaluation'
  train, eval_, titles = common.latest_raw_examples(args.output_dir, of_run_with=evaluated)
  ranks = ease_ranks(train, eval_, titles, args.regularization)
  ease = metrics.top_k(ranks)
  outputs = common.latest_outputs(args.output_dir, names.PIPELINE_NAME, evaluated)
  with open(os.path.join(outputs[evaluated], names.EVALUATION_FILE)) as f:
    evaluation = json.load(f)
  print(f'top-K accuracy with seen titles removed, {len(ranks):,} eval ratings, '
        f'{len(titles):,} titles')
  print(f'{"":<24}' + ''.join(f'{"K=" + k:>9}' for k in ease))
  rows = {f'EASE (lambda {args.regularization:g})': ease,
          'this model': evaluation['top_k_unseen']['model'],
          'most popular': evaluation['top_k_unseen']['popularity']}
  for name, values in rows.items():
    print(f'{name:<24}' + ''.join(f'{values[k]:>9.4f}' for k in ease))
  model = evaluation['top_k_unseen']['model'][names.GATE_KEY]
  print(f'model / EASE at K=100: {model / ease["100"]:.2f}x; model / most popular (as '
        f'listed) at K=100: {evaluation["top_k"]["model"]["100"] / evaluation["top_k"]["popularity"]["100"]:.2f}x')


if __name__ == '__main__':
  main()
