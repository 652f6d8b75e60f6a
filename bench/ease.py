"""A linear item-to-item reference: EASE (Steck, 2019) on a run's own train/eval split.

Fits EASE's closed form B = I - P / diag(P), P = (X'X + lambda I)^-1, on the binary
users-by-titles matrix of the train split, scores each eval rating's user against every
title, removes the titles the user rated in training (the truth is never removed) and
prints top-K accuracy beside the run's own Evaluator figures with seen titles removed
(evaluation.json, `top_k_unseen`): the same split, the same ranking rule (modules/metrics).
bench/classical.py sweeps lambda and adds RP3beta.

    .venv/bin/python bench/ease.py --output-dir /tmp/run1m --lambda 500
"""
import argparse
import json
import os
from typing import Dict, NamedTuple

import common  # noqa: F401  (sets up paths and environment first)

import numpy as np  # noqa: E402

from modules import metrics  # noqa: E402
from shared import names  # noqa: E402


class Interactions(NamedTuple):
  """A run's split as item-to-item methods read it."""
  x: np.ndarray      # [train users, titles] 1 where the user rated the title in training
  rows: np.ndarray   # [eval ratings] the row of x of each rating's user (0 when unknown)
  known: np.ndarray  # [eval ratings] whether the user has a training rating
  truth: np.ndarray  # [eval ratings] the title's catalog index
  seen: list         # [eval ratings] the user's training titles (one array per user)


def interactions(train: Dict[str, np.ndarray], eval_: Dict[str, np.ndarray],
                 titles) -> Interactions:
  """The binary training matrix and the eval ratings as its rows and columns."""
  position = {title: index for index, title in enumerate(titles)}
  users = {user: row for row, user in enumerate(sorted(set(train['user_id'].tolist())))}
  x = np.zeros((len(users), len(titles)), np.float32)
  x[[users[u] for u in train['user_id'].tolist()],
    [position[t] for t in train['movie_title'].tolist()]] = 1
  known = np.array([user in users for user in eval_['user_id'].tolist()])
  rows = np.array([users.get(user, 0) for user in eval_['user_id'].tolist()])
  truth = np.array([position[t] for t in eval_['movie_title'].tolist()])
  by_row = [np.flatnonzero(row) for row in x]  # one array per user, shared by their ratings
  empty = np.zeros(0, np.int64)
  seen = [by_row[row] if ok else empty for row, ok in zip(rows, known)]
  return Interactions(x, rows, known, truth, seen)


def ranks_under(data: Interactions, weights: np.ndarray) -> np.ndarray:
  """Each eval rating's rank of its title when a user's scores are their training row times
  an item-to-item matrix, the user's training titles removed."""
  ranks = metrics.ranks_of_truth(lambda chunk: data.x[data.rows[chunk]] @ weights, data.truth,
                                 data.seen)
  ranks[~data.known] = metrics.MISS  # these methods know nothing of users unseen in training
  return ranks


def ease_weights(gram: np.ndarray, regularization: float) -> np.ndarray:
  """EASE's B from the training matrix's X'X (float64) and lambda."""
  p = np.linalg.inv(gram + regularization * np.eye(len(gram)))
  b = (-p / np.diag(p)).astype(np.float32)
  b[np.diag_indices_from(b)] = 0
  return b


def ease_ranks(train, eval_, titles, regularization: float) -> np.ndarray:
  """Each eval rating's rank of its title under EASE, the user's training titles removed."""
  data = interactions(train, eval_, titles)
  return ranks_under(data, ease_weights((data.x.T @ data.x).astype(np.float64), regularization))


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
  listed = evaluation['top_k']
  print(f'model / EASE at K=100: {model / ease[names.GATE_KEY]:.2f}x; model / most popular (as '
        f'listed) at K=100: '
        f'{listed["model"][names.GATE_KEY] / listed["popularity"][names.GATE_KEY]:.2f}x')


if __name__ == '__main__':
  main()
