"""The Evaluator's arithmetic: ranks, seen-title removal, the popularity list, slices, gate."""
import numpy as np
import pytest

import tensorflow as tf
import tensorflow_recommenders as tfrs

from components.evaluator import gate
from modules import metrics


def ranks(scores, truth, seen=None):
  scores = np.array(scores, np.float32)
  if seen is not None:
    seen_rows = np.empty(len(seen), dtype=object)
    seen_rows[:] = [np.array(s, np.int64) for s in seen]
    seen = seen_rows
  return metrics.ranks_of_truth(lambda rows: scores[rows], np.array(truth), seen,
                                chunk=2).tolist()


def test_a_rank_counts_the_titles_scoring_strictly_higher():
  scores = [[0.9, 0.5, 0.1, 0.7],
            [0.2, 0.2, 0.2, 0.3],  # ties count in the truth's favour
            [0.1, 0.2, 0.3, 0.4]]
  assert ranks(scores, [1, 0, 3]) == [2, 1, 0]


def test_seen_titles_are_removed_before_ranking_but_never_the_truth():
  scores = [[0.9, 0.5, 0.1, 0.7], [0.9, 0.5, 0.1, 0.7]]
  assert ranks(scores, [1, 1], seen=[[0, 3], [1, 2]]) == [0, 2]


def test_seen_titles_are_each_query_users_training_titles_inside_the_catalog():
  seen = metrics.seen_titles(np.array([b'a', b'b', b'a', b'c', b'b', b'a']),
                             np.array([3, 1, 0, -1, 2, 3]),  # -1: outside the catalog
                             np.array([b'b', b'a', b'c', b'z', b'a', b'aa']))
  assert seen.dtype == object and seen.shape == (6,)  # two arrays of 2: not stacked
  # a rated title 3 twice (two movies of one title): it is left out once.
  assert [row.tolist() for row in seen] == [[1, 2], [3, 0], [], [], [3, 0], []]
  assert seen[1] is seen[4]  # one array per user, not a copy per query
  nobody = metrics.seen_titles(np.array([], 'S1'), np.array([], np.int64), np.array([b'a']))
  assert [row.tolist() for row in nobody] == [[]]


def test_a_title_outside_the_catalog_is_a_miss_at_every_k():
  ranked = ranks([[0.1, 0.2], [0.1, 0.2]], [-1, 0])
  assert ranked == [metrics.MISS, 1]
  assert metrics.top_k(np.array(ranked), ks=(1, 2, 100)) == {'1': 0.0, '2': 0.5, '100': 0.5}


def embedding_top_k(queries, truth, candidates, ks, chunk=None):
  return metrics.top_k(metrics.ranks_of_truth(metrics.embedding_scores(queries, candidates),
                                              truth, chunk=chunk), ks)


def test_top_k_accuracy_counts_strictly_higher_scores():
  queries = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
  candidates = np.array([[3.0, 0.0], [2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
  # Scores: q0 [3,2,0,1], q1 [0,0,1,1], q2 [3,2,1,2]; own titles 1, 2, 3.
  # Ranks (strictly higher scores): q0 1, q1 0 (a tie with candidate 3), q2 1.
  assert embedding_top_k(queries, np.array([1, 2, 3]), candidates, ks=[1, 2, 3]) == {
      '1': pytest.approx(1 / 3), '2': 1.0, '3': 1.0}


def test_top_k_accuracy_agrees_with_tfrs_factorized_top_k():
  # TFRS matched by candidate id: a hit when the true title is among the K retrieved.
  # (Matched by score instead, TFRS compares the positive's score with its own copy in the
  # catalog computed another way, so float rounding can turn a tie into a miss.)
  rng = np.random.default_rng(0)
  queries, candidates = rng.normal(size=(200, 8)), rng.normal(size=(30, 8))
  truth = rng.integers(0, 30, size=200)
  index = tfrs.layers.factorized_top_k.BruteForce(k=10)
  index.index(tf.constant(candidates, tf.float32), tf.range(30))
  metric = tfrs.metrics.FactorizedTopK(candidates=index, ks=(1, 5, 10))
  metric.update_state(tf.constant(queries, tf.float32),
                      tf.constant(candidates[truth], tf.float32),
                      true_candidate_ids=tf.constant(truth, tf.int32))
  theirs = {str(k): float(r.result()) for k, r in zip((1, 5, 10), metric._top_k_metrics)}
  assert embedding_top_k(queries, truth, candidates, ks=(1, 5, 10)) == pytest.approx(theirs)


def test_chunks_bound_the_scores_in_memory_and_change_nothing(monkeypatch):
  rng = np.random.default_rng(1)
  queries, candidates = rng.normal(size=(50, 8)), rng.normal(size=(30, 8))
  truth = rng.integers(0, 30, 50)
  whole = embedding_top_k(queries, truth, candidates, (1, 5, 10), chunk=50)
  shapes = []
  scores = metrics.embedding_scores(queries, candidates)
  monkeypatch.setattr(metrics, 'SCORES_PER_CHUNK', 7 * 30)  # 7 queries of 30 titles
  ranked = metrics.ranks_of_truth(lambda rows: shapes.append(scores(rows).shape) or scores(rows),
                                  truth)
  assert metrics.top_k(ranked, (1, 5, 10)) == whole
  assert max(rows for rows, _ in shapes) == 7


def test_popularity_ranks_equal_ranking_by_popularity_scores_seen_titles_too():
  counts = np.array([5, 9, 5, 0, 9, 1])
  truth = np.array([0, 2, 4, 3, 5, 1, -1])
  seen = np.empty(len(truth), dtype=object)
  seen[:] = [np.array(s, np.int64) for s in ([1, 4], [], [1, 0], [0, 1, 2, 4, 5], [3], [0], [1])]
  assert metrics.popularity_ranks(counts, truth)[:6].tolist() == [2, 3, 1, 5, 4, 0]  # 1 4 0 2 5 3
  # The same as ranking the queries by score, a score per title from its place.
  score = -np.argsort(np.argsort(-counts, kind='stable')).astype(float)
  by_score = lambda rows: np.broadcast_to(score, (len(range(len(truth))[rows]), len(counts)))
  for removed in (None, seen):
    assert metrics.popularity_ranks(counts, truth, removed).tolist() == (
        metrics.ranks_of_truth(by_score, truth, removed).tolist())
  assert metrics.popularity_ranks(counts, truth, seen)[:6].tolist() == [0, 3, 0, 0, 4, 0]
  assert metrics.popularity_ranks(counts, truth)[6] == metrics.MISS


@pytest.mark.parametrize('count, label', [(0, '0'), (1, '1-19'), (19, '1-19'), (20, '20-49'),
                                          (99, '50-99'), (199, '100-199'), (200, '200+')])
def test_activity_buckets(count, label):
  assert metrics.activity_bucket(count) == label


def test_slices_report_each_labels_count_and_accuracy_in_natural_order():
  labels = np.array(['100-199', '1-19', '20-49', '1-19'], dtype=object)
  rows = metrics.sliced_top_k(labels, {'model': np.array([0, 200, 99, 100])}, k=100)
  assert rows == [{'value': '1-19', 'count': 2, 'model': 0.0},
                  {'value': '20-49', 'count': 1, 'model': 1.0},
                  {'value': '100-199', 'count': 1, 'model': 1.0}]


def test_the_gate_passes_a_model_that_clears_every_check():
  checks = gate.checks(0.47, 0.30, min_top100=0.4, min_lift=1.1, max_regression=0.01,
                       baseline_top100=0.475, baseline_id=7)
  assert [c.passed for c in checks] == [True, True, True]
  assert checks[2].threshold == pytest.approx(0.465) and 'artifact 7' in checks[2].line()


@pytest.mark.parametrize('top100, popularity, baseline, failed', [
    (0.39, 0.30, None, ['minimum']),
    (0.45, 0.45, None, ['beats_popularity']),
    (0.45, 0.42, None, ['beats_popularity']),  # better, but not by the lift asked for
    (0.0, 0.0, None, ['beats_popularity']),  # nothing learnt on an empty split
    (0.45, 0.30, 0.47, ['no_regression']),
    (0.20, 0.30, 0.47, ['minimum', 'beats_popularity', 'no_regression']),
])
def test_each_check_fails_on_its_own(top100, popularity, baseline, failed):
  checks = gate.checks(top100, popularity, min_top100=0.4 if top100 else 0, min_lift=1.1,
                       max_regression=0.01, baseline_top100=baseline, baseline_id=1)
  assert [c.name for c in checks if not c.passed] == failed
  assert all(c.line().startswith('FAIL' if c.name in failed else 'PASS') for c in checks)


def test_without_a_blessed_model_the_regression_check_says_so():
  check = gate.checks(0.5, 0.3, 0.4, 1.1, 0.01)[2]
  assert check.passed and check.threshold is None and 'first' in check.explanation


def test_the_lift_floor_follows_the_popularity_list_of_the_same_split():
  # The same model quality means a pass on a release where popularity is weak and a
  # fail where it is strong: the floor is relative, not a number tuned on one release.
  assert gate.checks(0.25, 0.20, 0.0, 1.1, 0.01)[1].passed
  assert not gate.checks(0.25, 0.24, 0.0, 1.1, 0.01)[1].passed
  check = gate.checks(0.4674, 0.2963, 0.0, 1.1, 0.01)[1]
  assert check.threshold == pytest.approx(0.32593) and '1.58x' in check.line()


def test_both_ranks_from_one_pass_equal_ranking_each_way_by_brute_force():
  rng = np.random.default_rng(3)
  scores = rng.integers(0, 5, size=(40, 12)).astype(np.float32)  # ties on purpose
  truth = rng.integers(-1, 12, 40)
  seen = np.empty(40, dtype=object)
  seen[:] = [rng.choice(12, rng.integers(0, 6), replace=False) for _ in range(40)]
  listed, unseen = metrics.ranks_listed_and_unseen(lambda rows: scores[rows], truth, seen,
                                                   chunk=7)
  for row in range(40):
    if truth[row] < 0:
      assert listed[row] == unseen[row] == metrics.MISS
      continue
    above = scores[row] > scores[row, truth[row]]
    assert listed[row] == above.sum()
    kept = np.ones(12, bool)
    kept[seen[row]] = False
    kept[truth[row]] = True
    assert unseen[row] == (above & kept).sum()


def test_popularity_ranks_are_the_same_whatever_the_chunk_of_seen_titles(monkeypatch):
  rng = np.random.default_rng(4)
  counts, truth = rng.integers(0, 9, 15), rng.integers(-1, 15, 50)
  seen = np.empty(50, dtype=object)
  seen[:] = [rng.choice(15, rng.integers(0, 5), replace=False) for _ in range(50)]
  whole = metrics.popularity_ranks(counts, truth, seen)
  monkeypatch.setattr(metrics, 'SEEN_PER_CHUNK', 7)
  np.testing.assert_array_equal(metrics.popularity_ranks(counts, truth, seen), whole)
  scores = -np.argsort(np.argsort(-counts, kind='stable'), kind='stable').astype(np.float32)
  _, unseen = metrics.ranks_listed_and_unseen(lambda rows: np.tile(scores, (len(truth[rows]), 1)),
                                              truth, seen)
  np.testing.assert_array_equal(whole, unseen)  # popularity as scores, ranked the other way


def test_per_user_recall_and_ndcg_worked_out_by_hand():
  log2 = np.log2
  users = np.array([b'u1'] * 4 + [b'u2'] * 2 + [b'u3'] * 2 + [b'u4'] * 5, dtype=object)
  titles = np.array([b'A', b'B', b'C', b'A',  # u1 rated A twice: one held-out title
                     b'A', b'B',
                     b'Z', b'C',
                     b'A', b'B', b'C', b'D', b'E'], dtype=object)
  ranks = np.array([0, 2, 5, 0,
                    0, 0,  # tied: the list places them first and second
                    metrics.MISS, 3,  # outside the catalog; just past the list
                    4, 3, 2, 1, 0])
  figures = metrics.per_user_recall_ndcg(users, titles, ranks, k=3)
  # u1: A and B of {A, B, C} in the top 3, at positions 0 and 2. u2: both, at 0 and 1.
  # u3: none. u4: 3 of its 5 (RecBole's recall divides by 5, not by k), ideal at 0, 1, 2.
  recall = [2 / 3, 1, 0, 3 / 5]
  ndcg = [(1 + 1 / log2(4)) / (1 + 1 / log2(3) + 1 / log2(4)), 1, 0, 1]
  assert figures == pytest.approx({'recall': np.mean(recall), 'ndcg': np.mean(ndcg)})


def recbole_recall_ndcg(scores, positives, seen, k):
  """RecBole's Recall and NDCG (recbole/evaluator/metrics.py) written out for full lists:
  each user's catalog sorted by score with its training titles masked, pos_index the top-k's
  relevance, pos_len the number of positives."""
  recall, ndcg = [], []
  for row, relevant in enumerate(positives):
    masked = scores[row].copy()
    masked[seen[row]] = -np.inf
    top = np.argsort(-masked, kind='stable')[:k]
    pos_index = np.isin(top, relevant).astype(float)
    pos_len = len(relevant)
    recall.append(pos_index.sum() / pos_len)
    dcg = (pos_index / np.log2(np.arange(k) + 2)).sum()
    ndcg.append(dcg / (1 / np.log2(np.arange(min(pos_len, k)) + 2)).sum())
  return {'recall': np.mean(recall), 'ndcg': np.mean(ndcg)}


def test_per_user_figures_from_ranks_equal_recboles_on_the_sorted_lists():
  rng = np.random.default_rng(5)
  num_users, num_titles = 30, 40
  scores = rng.normal(size=(num_users, num_titles))  # no ties: one list per user
  seen, positives = [], []
  for _ in range(num_users):
    chosen = rng.permutation(num_titles)[:rng.integers(2, 25)]
    split = rng.integers(1, len(chosen))
    positives.append(chosen[:split])
    seen.append(chosen[split:])
  users = np.repeat(np.arange(num_users), [len(p) for p in positives])
  truth = np.concatenate(positives)
  seen_of_query = np.empty(len(users), dtype=object)
  seen_of_query[:] = [seen[user] for user in users]
  ranks = metrics.ranks_of_truth(lambda rows: scores[users[rows]], truth, seen_of_query)
  for k in (1, 5, 10):
    assert metrics.per_user_recall_ndcg(users, truth, ranks, k) == pytest.approx(
        recbole_recall_ndcg(scores, positives, seen, k))
