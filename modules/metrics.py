"""Retrieval metrics over the whole catalog, computed from each query's rank of its truth:
the one definition used by the Trainer's validation, the Evaluator and the benchmarks.

A held-out rating's rank is the number of catalog titles that score strictly higher than
its own title (ties count in its favour, as tf.math.in_top_k and TFRS' FactorizedTopK
count them); it is a hit at K when its rank is below K. With `seen`, the titles the user
rated in training are removed from the list first (what a product shows), so they do not
push the truth down. The same ranks give the per-user figures recommender libraries report
(per_user_recall_ndcg: RecBole's Recall@K and NDCG@K). Scores are computed a chunk of
queries at a time, so memory stays bounded whatever the catalog's size.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from shared import names

MISS = np.iinfo(np.int64).max  # the rank of a title outside the catalog
ScoresOf = Callable[[slice], np.ndarray]  # the [queries, titles] scores of some queries
SCORES_PER_CHUNK = 1 << 24  # 64 MB of float32 scores (and 16 MB of comparisons) at a time
SEEN_PER_CHUNK = 1 << 14  # queries whose seen titles are compared at a time
PER_USER_K = 10  # the list length of the per-user figures (RecBole's default topk)


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
  """Each query's user's training titles: [queries] arrays of distinct catalog indexes, the
  `seen` of ranks_of_truth. Titles outside the catalog (negative indexes) are left out; a
  user with no training ratings gets an empty array. Distinct: two movies can share a title
  (MovieLens 100k has such pairs), and a title left out twice would be subtracted twice from
  the ranks. No dense users-by-titles matrix, and one array per
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
    first = np.unique(titles_of_user, return_index=True)[1]
    arrays[row] = titles_of_user[np.sort(first)]  # in training order
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


def per_user_recall_ndcg(users: np.ndarray, titles: np.ndarray, ranks: np.ndarray,
                         k: int = PER_USER_K) -> Dict[str, float]:
  """Recall@k and NDCG@k averaged over users, as RecBole defines them (recbole/evaluator/
  metrics.py, `Recall` and `NDCG`), from the ranks of their held-out ratings.

  A user's relevant set R(u) is their distinct held-out titles; their list is the catalog
  ranked for them with their training titles removed when `ranks` are ranks_of_truth's with
  `seen` (RecBole's full ranking, which masks the training items). Per user:
    recall = |top-k of the list in R(u)| / |R(u)|  (RecBole divides by |R(u)|, not
             min(|R(u)|, k): a user with more than k held-out titles cannot reach 1);
    ndcg = sum over the hits of 1 / log2(position + 2) (position 0 first), over the ideal
           sum_{i=1}^{min(|R(u)|, k)} 1 / log2(i + 1);
  both averaged over the users with a held-out rating, each user counting once whatever
  their number of ratings (top_k counts each rating once).

  Each rank counts the titles scoring strictly higher, so held-out titles tied with each
  other share one rank: they take consecutive positions in the list (the first at its rank),
  as any one list would place them. A title outside the catalog (rank MISS) is in R(u) and
  never a hit.

  Args:
    users: [ratings] each held-out rating's user.
    titles: [ratings] its title (any comparable ids: a user's repeats count once).
    ranks: [ratings] the rank of its title in the user's list.
    k: the length of the list.

  Returns:
    {'recall': ..., 'ndcg': ...}.
  """
  user_index = np.unique(users, return_inverse=True)[1].ravel()
  title_index = np.unique(titles, return_inverse=True)[1].ravel()
  pairs = user_index.astype(np.int64) * (int(title_index.max()) + 1) + title_index
  distinct = np.unique(pairs, return_index=True)[1]
  user_index, ranks = user_index[distinct], np.minimum(ranks[distinct], k)  # no MISS overflow
  order = np.lexsort((ranks, user_index))
  user_index, ranks = user_index[order], ranks[order]
  tie_start = np.ones(len(ranks), bool)
  tie_start[1:] = (user_index[1:] != user_index[:-1]) | (ranks[1:] != ranks[:-1])
  row = np.arange(len(ranks))
  position = ranks + row - np.maximum.accumulate(np.where(tie_start, row, 0))
  hit = position < k
  relevant = np.bincount(user_index)  # every user has one held-out title at least
  gain = np.where(hit, 1 / np.log2(position + 2), 0.0)
  ideal = np.cumsum(1 / np.log2(np.arange(k) + 2))[np.minimum(relevant, k) - 1]
  return {'recall': float((np.bincount(user_index, weights=hit) / relevant).mean()),
          'ndcg': float((np.bincount(user_index, weights=gain) / ideal).mean())}


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
