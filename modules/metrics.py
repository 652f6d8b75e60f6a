"""Retrieval metrics over the whole catalog, computed from each query's rank of its truth:
the one definition used by the Trainer's validation, the Evaluator and the benchmarks.

A held-out rating's rank is the number of catalog titles that score strictly higher than
its own title (ties count in its favour, as tf.math.in_top_k and TFRS' FactorizedTopK
count them); it is a hit at K when its rank is below K. With `seen`, the titles the user
rated in training are removed from the list first (what a product shows), so they do not
push the truth down. Scores are computed a chunk of queries at a time, so memory stays
bounded whatever the catalog's size.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from shared import names

MISS = np.iinfo(np.int64).max  # the rank of a title outside the catalog
ScoresOf = Callable[[slice], np.ndarray]  # the [queries, titles] scores of some queries
SCORES_PER_CHUNK = 1 << 24  # 64 MB of float32 scores (and 16 MB of comparisons) at a time
SEEN_PER_CHUNK = 1 << 14  # queries whose seen titles are compared at a time


def ranks_of_truth(scores_of: ScoresOf, true_index: np.ndarray,
                   seen: Optional[Sequence[np.ndarray]] = None,
                   chunk: Optional[int] = None) -> np.ndarray:
  """Each query's rank of its true title: an int64 array, [queries].

  Args:
    scores_of: the scores of the queries in a slice of rows, [rows, titles].
    true_index: [queries], each query's title as a column of the scores; -1 for a title
      outside the catalog, which is a miss at every K.
    seen: [queries] arrays of the columns to leave out (the true title is never left out).
    chunk: queries scored at a time; by default as many as SCORES_PER_CHUNK scores allow.
  """
  listed, unseen = ranks_listed_and_unseen(scores_of, true_index, seen, chunk)
  return listed if seen is None else unseen


def ranks_listed_and_unseen(scores_of: ScoresOf, true_index: np.ndarray,
                            seen: Optional[Sequence[np.ndarray]] = None,
                            chunk: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
  """Both ranks of each query's truth from one scoring pass: as listed, and with its seen
  titles left out (the listed rank less the seen titles that score higher; the listed
  ranks again when `seen` is None). Arguments as ranks_of_truth's."""
  listed = np.empty(len(true_index), np.int64)
  unseen = listed if seen is None else np.empty(len(true_index), np.int64)
  if not len(true_index):
    return listed, unseen
  if chunk is None:
    chunk = max(1, SCORES_PER_CHUNK // scores_of(slice(0, 1)).shape[1])
  for start in range(0, len(true_index), chunk):
    rows = slice(start, min(start + chunk, len(true_index)))
    scores = scores_of(rows)
    truth = true_index[rows]
    own = scores[np.arange(len(truth)), np.maximum(truth, 0)]
    rank = (scores > own[:, None]).sum(axis=1)
    rank[truth < 0] = MISS
    listed[rows] = rank
    if seen is not None:
      seen_rows = seen[rows]
      owner = np.repeat(np.arange(len(truth)), [len(columns) for columns in seen_rows])
      if len(owner):
        columns = np.concatenate(seen_rows).astype(np.int64)
        above = scores[owner, columns] > own[owner]
        rank = rank - np.bincount(owner, weights=above, minlength=len(truth)).astype(np.int64)
        rank[truth < 0] = MISS
      unseen[rows] = rank
  return listed, unseen


def seen_titles(train_users: np.ndarray, train_titles: np.ndarray,
                query_users: np.ndarray) -> np.ndarray:
  """Each query's user's training titles: [queries] arrays of catalog indexes, the `seen` of
  ranks_of_truth. Titles outside the catalog (negative indexes) are left out; a user with no
  training ratings gets an empty array. No dense users-by-titles matrix, and one array per
  user shared by all of that user's queries (one copy per query would take gigabytes at
  25M ratings)."""
  inside = train_titles >= 0
  users, titles = train_users[inside], np.asarray(train_titles[inside], np.int64)
  order = np.argsort(users, kind='stable')  # stable: each user's titles in training order
  users, titles = users[order], titles[order]
  known, starts = np.unique(users, return_index=True)
  # One array per user, and a last, empty one for users with no training ratings; filled
  # one by one (an object array assigned a list at once would stack equal-length arrays).
  arrays = np.empty(len(known) + 1, dtype=object)
  for row, titles_of_user in enumerate(np.split(titles, starts[1:])):
    arrays[row] = titles_of_user
  arrays[-1] = np.zeros(0, np.int64)
  position = np.searchsorted(known, query_users)
  found = position < len(known)
  found[found] = known[position[found]] == query_users[found]
  return arrays[np.where(found, position, len(known))]


def embedding_scores(queries: np.ndarray, candidates: np.ndarray) -> ScoresOf:
  return lambda rows: queries[rows] @ candidates.T


def popularity_ranks(counts: np.ndarray, true_index: np.ndarray,
                     seen: Optional[Sequence[np.ndarray]] = None) -> np.ndarray:
  """Ranks of the truth when everyone gets the titles in order of their training ratings
  (ties: catalog order), without scoring: the truth's place in that order, less the seen
  titles placed before it. [titles] counts, [queries] true_index; as ranks_of_truth."""
  order = np.argsort(-counts, kind='stable')
  place = np.empty(len(counts), np.int64)
  place[order] = np.arange(len(counts))
  ranks = place[np.maximum(true_index, 0)]
  if seen is not None:
    # A chunk of queries at a time: every seen title of millions of ratings at once would
    # take gigabytes.
    for start in range(0, len(true_index), SEEN_PER_CHUNK):
      rows = slice(start, min(start + SEEN_PER_CHUNK, len(true_index)))
      seen_rows = seen[rows]
      owner = np.repeat(np.arange(len(seen_rows)), [len(columns) for columns in seen_rows])
      if len(owner):
        before = place[np.concatenate(list(seen_rows)).astype(np.int64)] < ranks[rows][owner]
        ranks[rows] -= np.bincount(owner[before], minlength=len(seen_rows))
  return np.where(true_index < 0, MISS, ranks)


def top_k(ranks: np.ndarray, ks: Sequence[int] = names.TOP_KS) -> Dict[str, float]:
  """Top-K accuracy for each K: the share of ranks below K, keyed by str(K)."""
  return {str(k): float((ranks < k).mean()) for k in ks}


def activity_bucket(num_ratings: int) -> str:
  """A user's activity: the number of their ratings in the training split, bucketed."""
  for upper, label in ((0, '0'), (19, '1-19'), (49, '20-49'), (99, '50-99'),
                       (199, '100-199')):
    if num_ratings <= upper:
      return label
  return '200+'


def sliced_top_k(labels: np.ndarray, ranks: Dict[str, np.ndarray],
                 k: int = names.GATE_K) -> List[Dict]:
  """Top-k accuracy of each set of ranks within each slice (queries sharing a label)."""
  rows = []
  for label in sorted(set(labels.tolist()), key=_natural):
    members = labels == label
    rows.append({'value': label, 'count': int(members.sum()),
                 **{name: float((values[members] < k).mean())
                    for name, values in ranks.items()}})
  return rows


def _natural(label: str):
  """Orders labels by their first number ('1-19' before '100-199'), then as text."""
  digits = ''.join(c if c.isdigit() else ' ' for c in label).split()
  return (int(digits[0]) if digits else float('inf'), label)
