"""Where the model stands against classical item-to-item methods on its own split: EASE with
lambda swept and RP3beta over a grid of alpha and beta, each tuned, beside the run's model.

RP3beta (Paudel et al., 2017; as Dacrema et al., 2019, evaluate it): the random walk
user -> title -> user -> title, its transition probabilities raised to alpha, each title's
column divided by its training popularity to the power beta: W = (P_iu^alpha P_ui^alpha)
diag(popularity)^-beta, a user's scores their training row times W (dense: every title's
neighbours, no top-k pruning). EASE as in bench/ease.py.

Every figure comes from modules/metrics on the ranks with the user's training titles removed
(the Evaluator's rule): top-100 accuracy per rating, and per user RecBole's Recall@10 and
NDCG@10 (metrics.per_user_recall_ndcg), printed beside evaluation.json's for the model and
the most-popular list. Each method is tuned on the eval split itself (its best setting by
NDCG@10): an upper bound for it, so the comparison is, if anything, in its favour.

    .venv/bin/python bench/classical.py --output-dir /tmp/user-metrics/out
"""
import argparse
import json
import os
from typing import Dict, List, Tuple

import common  # noqa: F401  (sets up paths and environment first)
import ease  # noqa: E402

import numpy as np  # noqa: E402

from modules import metrics  # noqa: E402
from shared import names  # noqa: E402

LAMBDAS = (50, 100, 200, 300, 400, 500, 700, 1000)
ALPHAS = (0.5, 0.75, 1.0)
BETAS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)


def rp3beta_weights(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
  """RP3beta's title-to-title matrix from the binary training matrix."""
  user_degree = np.maximum(x.sum(axis=1, keepdims=True), 1)
  title_degree = np.maximum(x.sum(axis=0), 1)
  user_to_title = (x / user_degree) ** alpha
  title_to_user = (x.T / title_degree[:, None]) ** alpha
  return (title_to_user @ user_to_title) / title_degree[None, :] ** beta


def figures(data: ease.Interactions, eval_: Dict[str, np.ndarray],
            weights: np.ndarray) -> Dict[str, float]:
  """Top-100 accuracy per rating and per-user Recall@10 and NDCG@10, seen titles removed."""
  ranks = ease.ranks_under(data, weights)
  return {'top_100': metrics.top_k(ranks, (names.GATE_K,))[names.GATE_KEY],
          **metrics.per_user_recall_ndcg(eval_['user_id'], eval_['movie_title'], ranks)}


def print_rows(rows: List[Tuple[str, Dict]]) -> None:
  k = metrics.PER_USER_K
  print(f'{"":<40}{"top-" + names.GATE_KEY:>9}{f"Recall@{k}":>11}{f"NDCG@{k}":>9}')
  for name, values in rows:
    cells = [values.get(key) for key in ('top_100', 'recall', 'ndcg')]
    print(f'{name:<40}' + ''.join(f'{"-" if c is None else f"{c:.4f}":>{w}}'
                                  for c, w in zip(cells, (9, 11, 9))))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--output-dir', default=common.configs.DEFAULT_OUTPUT_DIR)
  args = parser.parse_args()
  evaluated = 'RetrievalEvaluator.evaluation'
  train, eval_, titles = common.latest_raw_examples(args.output_dir, of_run_with=evaluated)
  data = ease.interactions(train, eval_, titles)
  gram = (data.x.T @ data.x).astype(np.float64)
  swept = {'EASE': [(f'lambda {value}', figures(data, eval_, ease.ease_weights(gram, value)))
                    for value in LAMBDAS],
           'RP3beta': [(f'alpha {alpha}, beta {beta}',
                        figures(data, eval_, rp3beta_weights(data.x, alpha, beta)))
                       for alpha in ALPHAS for beta in BETAS]}
  outputs = common.latest_outputs(args.output_dir, names.PIPELINE_NAME, evaluated)
  with open(os.path.join(outputs[evaluated], names.EVALUATION_FILE)) as f:
    evaluation = json.load(f)
  print(f'Seen titles removed; {len(data.truth):,} eval ratings of '
        f'{len(set(eval_["user_id"].tolist())):,} users, {len(titles):,} titles')
  for method, rows in swept.items():
    print(f'\n{method}, swept:')
    print_rows([(f'{method} ({setting})', values) for setting, values in rows])
  # The model's per-user figures are blank for a run evaluated before they existed.
  per_user = (evaluation.get('per_user_unseen') or {}).get('rankings', {})
  best = [(f'{method} ({setting}), best', values) for method, rows in swept.items()
          for setting, values in [max(rows, key=lambda row: row[1]['ndcg'])]]
  print('\nTuned, beside the run\'s evaluation.json:')
  print_rows(best + [(label, {'top_100': evaluation['top_k_unseen'][name][names.GATE_KEY],
                              **per_user.get(name, {})})
                     for name, label in (('model', 'this model'),
                                         ('popularity', 'most popular'))])


if __name__ == '__main__':
  main()
