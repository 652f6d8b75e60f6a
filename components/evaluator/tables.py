"""The evaluation's tables, defined once: the Evaluator's log, the inspector's text output
and the HTML report all show evaluation.json through these (no TensorFlow imported)."""
from typing import Dict, List, Tuple

ROW_NAMES = {'model': 'this model', 'popularity': 'most popular',
             'unknown_user': 'as unknown user', 'baseline_model': 'latest blessed model'}
Table = Tuple[str, List[str], List[List[object]]]  # title, header, rows


def top_k_tables(evaluation: Dict) -> List[Table]:
  """An evaluation's top-K accuracy of each ranking, as listed and with seen titles removed."""
  ks = list(evaluation['top_k']['model'])
  return [(title, [''] + [f'K={k}' for k in ks],
           [[ROW_NAMES.get(name, name)] + [values[k] for k in ks]
            for name, values in evaluation[key].items()])
          for key, title in (('top_k', 'top-K accuracy'),
                             ('top_k_unseen', 'top-K accuracy, seen titles removed'))]


def slice_tables(evaluation: Dict) -> List[Table]:
  """An evaluation's top-100 accuracy within each slice of each sliced feature."""
  header = ['value', 'ratings', 'model', 'most popular', 'model, seen removed',
            'most popular, seen removed']
  return [(f'top-100 by {name}', header,
           [[r['value'], r['count'], r['model'], r['popularity'], r['model_unseen'],
             r['popularity_unseen']] for r in rows])
          for name, rows in evaluation['slices'].items()]
