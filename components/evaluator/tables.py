"""The evaluation's tables, defined once: the Evaluator's log, the inspector's text output
and the HTML report all show evaluation.json through these (no TensorFlow imported)."""
from typing import Dict, List, Tuple

from shared import names

ROW_NAMES = {'model': 'this model', 'popularity': 'most popular',
             'unknown_user': 'as unknown user', 'baseline_model': 'latest blessed model',
             'mean_user': 'as the mean user', 'model_with_features': 'this model, by features'}
Table = Tuple[str, List[str], List[List[object]]]  # title, header, rows


def top_k_tables(evaluation: Dict) -> List[Table]:
  """An evaluation's top-K accuracy of each ranking, as listed and with seen titles removed,
  and for the users never seen in training when the eval split has some."""
  ks = list(evaluation['top_k']['model'])
  cold = evaluation.get('cold_start')
  sections = [('top-K accuracy', evaluation['top_k']),
              ('top-K accuracy, seen titles removed', evaluation['top_k_unseen'])]
  if cold:
    sections.append((f'top-K accuracy of the {cold["num_users"]:,} users never seen in '
                     f'training ({cold["num_ratings"]:,} ratings)', cold['top_k']))
  return [(title, [''] + [f'K={k}' for k in ks],
           [[ROW_NAMES.get(name, name)] + [values[k] for k in ks]
            for name, values in rows.items()])
          for title, rows in sections]


def per_user_tables(evaluation: Dict) -> List[Table]:
  """An evaluation's per-user Recall@K and NDCG@K of each ranking, seen titles removed (the
  figures recommender libraries report); none for an evaluation.json written before them."""
  per_user = evaluation.get('per_user_unseen')
  if not per_user:
    return []
  k = per_user['k']
  return [(f'per user, seen titles removed (RecBole\'s Recall@{k} and NDCG@{k}), '
           f'{evaluation["num_eval_users"]:,} users',
           ['', f'Recall@{k}', f'NDCG@{k}'],
           [[ROW_NAMES.get(name, name), values['recall'], values['ndcg']]
            for name, values in per_user['rankings'].items()])]


def slice_tables(evaluation: Dict) -> List[Table]:
  """An evaluation's top-GATE_K accuracy within each slice of each sliced feature."""
  header = ['value', 'ratings', 'model', 'most popular', 'model, seen removed',
            'most popular, seen removed']
  return [(f'top-{names.GATE_K} by {name}', header,
           [[r['value'], r['count'], r['model'], r['popularity'], r['model_unseen'],
             r['popularity_unseen']] for r in rows])
          for name, rows in evaluation['slices'].items()]
