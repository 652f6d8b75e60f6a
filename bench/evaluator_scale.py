"""The Evaluator's ranking at MovieLens 25M's scale, on synthetic embeddings.

Ranks each eval rating's title among 62,000 candidates the way the RetrievalEvaluator does
(modules/metrics.py: scores a chunk of queries at a time), as listed and with each user's
training titles removed (one short array per user, no users-by-titles matrix), and the
popularity baseline under both; prints seconds, ratings per second and the peak resident
memory above what the inputs take, for each --ratings size side by side.

    .venv/bin/python bench/evaluator_scale.py --ratings 100000,1000000
"""
import argparse
import resource
import time

import common  # noqa: F401  (sets up paths and environment first)

import numpy as np  # noqa: E402

from modules import metrics  # noqa: E402


def peak_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def case(ratings: int, titles: int, users: int, seen_per_user: int, dim: int, rng) -> dict:
  candidates = rng.normal(size=(titles, dim)).astype(np.float32)
  user_embeddings = rng.normal(size=(users, dim)).astype(np.float32)
  user = rng.integers(0, users, ratings)
  truth = rng.zipf(1.3, ratings) % titles  # popular titles rated most, as in MovieLens
  by_user = [rng.choice(titles, seen_per_user, replace=False) for _ in range(users)]
  seen = np.empty(ratings, dtype=object)
  for row, who in enumerate(user):
    seen[row] = by_user[who]
  counts = np.bincount(rng.zipf(1.3, 20 * ratings) % titles, minlength=titles)
  before = peak_mib()
  start = time.monotonic()
  scores = lambda rows: user_embeddings[user[rows]] @ candidates.T  # noqa: E731
  listed, unseen = metrics.ranks_listed_and_unseen(scores, truth, seen)  # as the Evaluator
  ranks = {'model': listed, 'model, seen removed': unseen,
           'most popular': metrics.popularity_ranks(counts, truth),
           'most popular, seen removed': metrics.popularity_ranks(counts, truth, seen)}
  seconds = time.monotonic() - start
  assert all(len(r) == ratings for r in ranks.values())
  return {'seconds': seconds, 'per_second': ratings / seconds,
          'extra_mib': max(0.0, peak_mib() - before)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--ratings', default='100000,1000000',
                      help='eval ratings per case (MovieLens 25M has 5 million)')
  parser.add_argument('--titles', type=int, default=62_000)
  parser.add_argument('--users', type=int, default=162_000)
  parser.add_argument('--seen-per-user', type=int, default=120)
  parser.add_argument('--dim', type=int, default=32)
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  print(f'{args.titles:,} candidates, {args.users:,} users with {args.seen_per_user} seen '
        f'titles each, embeddings of {args.dim}; four rankings per eval rating')
  print(f'{"eval ratings":>14}{"seconds":>10}{"ratings/s":>12}{"peak extra MiB":>16}')
  for ratings in (int(text) for text in args.ratings.split(',')):
    result = case(ratings, args.titles, args.users, args.seen_per_user, args.dim, rng)
    print(f'{ratings:>14,}{result["seconds"]:>10.1f}{result["per_second"]:>12,.0f}'
          f'{result["extra_mib"]:>16,.0f}', flush=True)


if __name__ == '__main__':
  main()
