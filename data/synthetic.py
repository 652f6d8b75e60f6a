"""Synthetic MovieLens releases of any size, in the 1M layout or the CSV (20M/25M) layout.

    python -m data.synthetic --ratings 1000000 --layout grouplens-1m --dest /tmp/synth-1m
    python -m data.synthetic --ratings 25000000 --layout grouplens-csv --dest /tmp/synth-25m

MovieLens' licence forbids redistribution and these machines cannot reach GroupLens, so the
scale benchmark and the tests run on releases this module writes. They have the shape of
the real ones:
  * skew: movie popularity follows a Zipf law (exponent `skew`) and user activity a
    log-normal one with MovieLens' floor of 20 ratings per user, so a few movies and users
    hold most ratings;
  * tastes a model can learn: users and movies fall into groups, and a user picks a movie
    of their own group with probability `taste` (otherwise any movie, by popularity);
  * no user rates a movie twice; ratings are written user by user, as GroupLens does.
Users and movies default to the ratios of the real 1M and 25M releases (6,040 users and
3,883 movies for 1M ratings; 162,541 and 62,423 for 25M). Memory stays bounded: one user's
ratings are drawn and written at a time.
"""
import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Dict, Iterator

import numpy as np

from data import features, layouts
from data.fetch import sha256_file
from shared import names

LAYOUTS = (layouts.GROUPLENS_1M.name, layouts.GROUPLENS_CSV.name)
# The genres drawn from: those of GroupLens' 1M (all of 100k's but 'unknown').
GENRE_IDS = tuple(features.genre_id(name) for name in layouts.GENRES_100K[1:])
FIRST_TIMESTAMP = 956_703_932  # MovieLens 1M's first rating, 2000-04-25
LAST_TIMESTAMP = 1_574_327_703  # MovieLens 25M's last rating, 2019-11-21
MIN_RATINGS_PER_USER = 20  # as in every GroupLens release


@dataclasses.dataclass(frozen=True)
class Spec:
  """What to generate; users and movies of 0 take the real releases' ratios."""
  ratings: int
  layout: str = 'grouplens-csv'
  users: int = 0
  movies: int = 0
  groups: int = 20
  taste: float = 0.7
  skew: float = 0.9
  seed: int = 0

  def resolved(self) -> 'Spec':
    if self.layout not in LAYOUTS:
      raise ValueError(f'layout must be one of {", ".join(LAYOUTS)}, not {self.layout!r}')
    if self.ratings < MIN_RATINGS_PER_USER:
      raise ValueError(f'ratings must be at least {MIN_RATINGS_PER_USER}, not {self.ratings}')
    millions = self.ratings / 1e6
    # 1M: 165.6 ratings per user; 25M: 153.8. Movies grow sublinearly: 3,883 at 1M, 62,423
    # at 25M is an exponent of 0.86; below 1M more slowly (100k has 1,682).
    users = self.users or max(1, round(self.ratings / (165.6 - 0.5 * max(0.0, millions - 1))))
    exponent = 0.862 if millions >= 1 else 0.5
    movies = self.movies or max(MIN_RATINGS_PER_USER * 2, round(3883 * millions ** exponent))
    users = min(users, self.ratings // MIN_RATINGS_PER_USER)
    if self.ratings > users * movies // 2:
      raise ValueError(f'{self.ratings:,} ratings do not fit {users:,} users and {movies:,} '
                       'movies without filling half of all pairs: add users or movies')
    return dataclasses.replace(self, users=users, movies=movies)


def _title(movie: int, year: int) -> str:
  # Some titles carry a comma (CSV quoting) or a latin-1 letter (1M's encoding).
  if movie % 10 == 3:
    return f'Movie {movie}, The ({year})'
  if movie % 10 == 7:
    return f'Misérables {movie}, Les ({year})'
  return f'Movie {movie} ({year})'


# ---------------------------------------------------------------------------------------
# Drawing the release.


def _user_counts(spec: Spec, rng: np.random.Generator) -> np.ndarray:
  """Ratings per user: log-normal above the floor of 20, summing to spec.ratings exactly."""
  cap = spec.movies // 2
  extra = rng.lognormal(mean=0.0, sigma=1.2, size=spec.users)
  budget = spec.ratings - MIN_RATINGS_PER_USER * spec.users
  counts = MIN_RATINGS_PER_USER + np.floor(extra / extra.sum() * budget).astype(np.int64)
  counts = np.minimum(counts, cap)
  # Hand out what rounding and the cap left, one rating at a time to users below the cap.
  while (short := spec.ratings - int(counts.sum())) > 0:
    room = np.flatnonzero(counts < cap)
    counts[rng.choice(room, size=min(short, room.size), replace=False)] += 1
  return counts


def _popularity(spec: Spec, rng: np.random.Generator) -> np.ndarray:
  """Each movie's weight: Zipf over a random order of the movies."""
  ranks = rng.permutation(spec.movies)
  return 1.0 / (ranks + 10.0) ** spec.skew


class _Sampler:
  """Draws a user's distinct movies: from their group with probability `taste`, else any."""

  def __init__(self, spec: Spec, weights: np.ndarray, rng: np.random.Generator):
    self._spec, self._rng = spec, rng
    self._all = np.cumsum(weights) / weights.sum()
    groups = np.arange(spec.movies) % spec.groups
    self._members = [np.flatnonzero(groups == g) for g in range(spec.groups)]
    self._cdfs = [np.cumsum(weights[m]) / weights[m].sum() for m in self._members]

  def _draw(self, group: int, size: int) -> np.ndarray:
    own = self._rng.binomial(size, self._spec.taste)
    members, cdf = self._members[group], self._cdfs[group]
    picked_own = members[np.minimum(np.searchsorted(cdf, self._rng.random(own)), members.size - 1)]
    picked_any = np.minimum(np.searchsorted(self._all, self._rng.random(size - own)),
                            self._spec.movies - 1)
    return np.concatenate([picked_own, picked_any])

  def movies(self, group: int, count: int) -> np.ndarray:
    chosen = np.unique(self._draw(group, count + count // 3 + 8))
    for _ in range(4):
      if chosen.size >= count:
        break
      chosen = np.union1d(chosen, self._draw(group, 2 * (count - chosen.size) + 8))
    if chosen.size < count:  # a heavy user who has seen the popular movies: any others
      rest = np.setdiff1d(self._rng.permutation(self._spec.movies), chosen, assume_unique=True)
      chosen = np.union1d(chosen, rest[:count - chosen.size])
    return np.sort(self._rng.choice(chosen, size=count, replace=False))


def _movie_records(spec: Spec, years: np.ndarray) -> Iterator[layouts.Record]:
  for movie in range(spec.movies):
    genres = [GENRE_IDS[(movie * 7 + k * 5) % len(GENRE_IDS)] for k in range(1 + movie % 3)]
    yield {features.MOVIE_ID: str(movie + 1),
           features.MOVIE_TITLE: _title(movie + 1, int(years[movie])),
           features.MOVIE_GENRES: genres}


def _user_records(spec: Spec) -> Iterator[layouts.Record]:
  for user in range(1, spec.users + 1):
    yield {features.USER_ID: str(user), features.USER_GENDER: 1 - user % 2,  # even: male
           features.BUCKETIZED_USER_AGE: features.AGE_BUCKETS[user % len(features.AGE_BUCKETS)],
           features.USER_OCCUPATION_TEXT: layouts.OCCUPATIONS_1M[user % 21],
           features.USER_ZIP_CODE: f'{(user * 7919) % 100000:05d}'}


def _rating_records(spec: Spec, rng: np.random.Generator, say) -> Iterator[layouts.Record]:
  """Each user's ratings, one user's drawn at a time, so that memory stays flat."""
  counts = _user_counts(spec, rng)
  sampler = _Sampler(spec, _popularity(spec, rng), rng)
  # Half stars since MovieLens 10M; whole stars in 1M.
  stars = (np.arange(2, 11) / 2) if spec.layout == layouts.GROUPLENS_CSV.name else (
      np.arange(1.0, 6.0))
  span = LAST_TIMESTAMP - FIRST_TIMESTAMP
  written, next_report = 0, 0.0
  for user in range(spec.users):
    count = int(counts[user])
    movies = sampler.movies(user % spec.groups, count) + 1
    first = FIRST_TIMESTAMP + int(rng.integers(0, span * 0.9))
    times = first + rng.integers(0, max(1, min(span // 10, LAST_TIMESTAMP - first)), count)
    values = stars[rng.integers(0, stars.size, count)]
    user_id = str(user + 1)
    for movie, rating, timestamp in zip(movies.tolist(), values.tolist(), times.tolist()):
      yield {features.USER_ID: user_id, features.MOVIE_ID: movie, features.USER_RATING: rating,
             features.TIMESTAMP: timestamp}
    written += count
    if time.monotonic() >= next_report:
      say(f'  {written:,} of {spec.ratings:,} ratings ({written / spec.ratings:.0%})')
      next_report = time.monotonic() + 15


def write(spec: Spec, dest: str, say=print) -> Dict[str, object]:
  """Writes a synthetic release, through its layout's definition (data/layouts.py).

  Args:
    spec: what to generate.
    dest: the directory to write it into (created).
    say: where progress goes.

  Returns:
    The manifest written beside the files (names.SOURCE_MANIFEST): the command that makes
    the release, its layout, its rows and each file's SHA-256.
  """
  spec = spec.resolved()
  layout = layouts.LAYOUTS[spec.layout]
  rng = np.random.default_rng(spec.seed)
  start = time.monotonic()
  say(f'Writing {spec.ratings:,} ratings by {spec.users:,} users of {spec.movies:,} movies '
      f'({spec.layout} layout) to {dest} ...')
  # The movies' years are drawn before the ratings, whichever file is written first, so
  # that a seed is one release.
  years = rng.integers(1920, 2020, size=spec.movies)
  files = layouts.write_release(dest, layout, movies=_movie_records(spec, years),
                                users=_user_records(spec),
                                ratings=_rating_records(spec, rng, say))
  manifest = {
      'source': f'synthetic: python -m data.synthetic --ratings {spec.ratings} --layout '
                f'{spec.layout} --seed {spec.seed}',
      'layout': spec.layout,
      'rows': {'ratings': spec.ratings, 'movies': spec.movies,
               **({'users': spec.users} if layout.users else {})},
      'sha256': {name: sha256_file(os.path.join(dest, name)) for name in files},
      'spec': dataclasses.asdict(spec),
  }
  with open(os.path.join(dest, names.SOURCE_MANIFEST), 'w') as file:
    json.dump(manifest, file, indent=2)
  say(f'Wrote {spec.ratings:,} ratings in {time.monotonic() - start:.0f} s: {dest}')
  return manifest


def main(argv=None) -> int:
  """The command line (`python -m data.synthetic`, its --help says the flags).

  Args:
    argv: the arguments; None reads sys.argv.

  Returns:
    The exit status: 0, or 1 for a release that cannot be drawn.
  """
  parser = argparse.ArgumentParser(
      prog='python -m data.synthetic', description=__doc__.split('\n')[0],
      formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n', 2)[2])
  parser.add_argument('--ratings', type=int, required=True, help='number of ratings')
  parser.add_argument('--layout', choices=LAYOUTS, default=Spec.layout,
                      help='file layout (default: %(default)s)')
  parser.add_argument('--dest', required=True, help='directory to write the release into')
  parser.add_argument('--users', type=int, default=0,
                      help='number of users (default: the real releases\' ratio)')
  parser.add_argument('--movies', type=int, default=0,
                      help='number of movies (default: the real releases\' ratio)')
  parser.add_argument('--groups', type=int, default=Spec.groups,
                      help='taste groups (default: %(default)s)')
  parser.add_argument('--taste', type=float, default=Spec.taste,
                      help='probability that a rating is of the user\'s own group '
                      '(default: %(default)s)')
  parser.add_argument('--skew', type=float, default=Spec.skew,
                      help='Zipf exponent of movie popularity: higher, a few movies hold '
                      'more of the ratings (default: %(default)s)')
  parser.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
  args = parser.parse_args(argv)
  spec = Spec(args.ratings, args.layout, args.users, args.movies, args.groups, args.taste,
              args.skew, args.seed)
  try:
    write(spec, args.dest)
  except ValueError as error:
    print(f'error: {error}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
