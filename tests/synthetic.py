"""Small synthetic MovieLens releases, written in each layout the pipeline reads.

`make_release` draws users, movies and ratings from a seeded generator; `write` lays the same
release out in any layout of data/layouts.py (through that layout's own definition), as
GroupLens 100k, RecBole's copy, GroupLens 1M or the CSV releases, so tests can check that
every layout reads into the same rows.
"""
import dataclasses
import functools
import os
import random
from typing import Dict, List

from data import features, layouts

OCCUPATIONS = ('student', 'engineer', 'writer', 'educator', 'other')
_GENDER_CODES = {letter: code for code, letter in features.GENDERS.items()}
FIRST_TIMESTAMP = 874_724_710  # MovieLens 100k's first rating, 1997-09-20


@dataclasses.dataclass
class Movie:
  movie_id: int
  name: str  # the title without its year
  year: int
  genres: List[str]  # 100k spellings

  @property
  def title(self) -> str:
    return f'{self.name} ({self.year})'


@dataclasses.dataclass
class User:
  user_id: int
  age: int
  gender: str
  occupation: str
  zip_code: str


@dataclasses.dataclass
class Rating:
  user_id: int
  movie_id: int
  rating: int
  timestamp: int


@dataclasses.dataclass
class Release:
  users: List[User]
  movies: List[Movie]
  ratings: List[Rating]


def make_release(num_users: int = 30, num_movies: int = 40, num_ratings: int = 600,
                 seed: int = 0) -> Release:
  """A release with every user and at least most movies rated, and a latin-1 title."""
  rng = random.Random(seed)
  movies, users = _movies(rng, num_movies), _users(rng, num_users)
  pairs = set()
  while len(pairs) < num_ratings:
    user = (len(pairs) % num_users) + 1  # every user rates
    pairs.add((user, rng.randint(1, num_movies)))
  return Release(users, movies, _ratings(rng, pairs))


def make_clustered_release(num_users: int = 120, num_movies: int = 300,
                           ratings_per_user: int = 25, num_groups: int = 6,
                           taste: float = 0.9, seed: int = 0,
                           occupation_tells_group: bool = False) -> Release:
  """A release with tastes a model can learn and a most-popular list cannot: users and
  movies fall into groups, and a user's ratings are, with probability `taste`, of a movie
  of their own group (otherwise of any movie). With `occupation_tells_group`, a user's
  occupation names their group: what a model can serve a user it never saw by."""
  rng = random.Random(seed)
  movies, users = _movies(rng, num_movies), _users(rng, num_users)
  if occupation_tells_group:  # (names of MovieLens 1M's list, so every layout writes them)
    for user in users:
      user.occupation = layouts.OCCUPATIONS_1M[1 + user.user_id % num_groups]
  block = num_movies // num_groups
  pairs = set()
  for user in range(1, num_users + 1):
    group = user % num_groups
    rated = set()
    while len(rated) < ratings_per_user:
      if rng.random() < taste:
        rated.add(group * block + rng.randint(1, block))
      else:
        rated.add(rng.randint(1, num_movies))
    pairs.update((user, movie) for movie in rated)
  return Release(users, movies, _ratings(rng, pairs))


def _movies(rng: random.Random, count: int) -> List[Movie]:
  movies = [Movie(i, f'Movie {i}', 1990 + i % 10,
                  rng.sample(layouts.GENRES_100K[1:], rng.randint(1, 3)))
            for i in range(1, count + 1)]
  movies[0].name = 'Misérables, Les'  # outside ASCII: u.item is latin-1, RecBole's UTF-8
  return movies


def _users(rng: random.Random, count: int) -> List[User]:
  return [User(i, rng.randint(7, 73), rng.choice('MF'), rng.choice(OCCUPATIONS),
               f'{rng.randint(0, 99999):05d}') for i in range(1, count + 1)]


def _ratings(rng: random.Random, pairs) -> List[Rating]:
  return [Rating(user, movie, rng.randint(1, 5), FIRST_TIMESTAMP + rng.randint(0, 10**7))
          for user, movie in sorted(pairs)]


def records(release: Release) -> Dict[str, List[layouts.Record]]:
  """The release as the readers' records: {'ratings', 'movies', 'users': records}."""
  return {
      'ratings': [{features.USER_ID: str(r.user_id), features.MOVIE_ID: str(r.movie_id),
                   features.USER_RATING: float(r.rating), features.TIMESTAMP: r.timestamp}
                  for r in release.ratings],
      'movies': [{features.MOVIE_ID: str(m.movie_id), features.MOVIE_TITLE: m.title,
                  features.MOVIE_GENRES: [features.genre_id(g) for g in m.genres]}
                 for m in release.movies],
      'users': [{features.USER_ID: str(u.user_id), features.RAW_USER_AGE: float(u.age),
                 features.BUCKETIZED_USER_AGE: features.bucketize_age(u.age),
                 features.USER_GENDER: _GENDER_CODES[u.gender],
                 features.USER_OCCUPATION_TEXT: u.occupation, features.USER_ZIP_CODE: u.zip_code}
                for u in release.users],
  }


def write(layout_name: str, release: Release, directory: str) -> str:
  """Writes the release into directory in a layout of data/layouts.py; returns directory."""
  tables = records(release)
  if layout_name == layouts.GROUPLENS_1M.name:
    # 1M codes occupations from its own list: one it lacks becomes college/grad student.
    for user in tables['users']:
      if user[features.USER_OCCUPATION_TEXT] not in layouts.OCCUPATIONS_1M:
        user[features.USER_OCCUPATION_TEXT] = layouts.OCCUPATIONS_1M[4]
  layouts.write_release(directory, layouts.LAYOUTS[layout_name], **tables)
  return directory


def age_group(age: int) -> int:
  """The MovieLens 1M age group (its lower bound) of an age in years."""
  return int(features.bucketize_age(age))


WRITERS = {name: functools.partial(write, name) for name in layouts.LAYOUTS}
write_grouplens_100k = WRITERS[layouts.GROUPLENS_100K.name]
write_recbole_100k = WRITERS[layouts.RECBOLE_100K.name]
write_grouplens_1m = WRITERS[layouts.GROUPLENS_1M.name]
write_grouplens_csv = WRITERS[layouts.GROUPLENS_CSV.name]


def add_eval_only_user(release: Release, occupation: str = 'astronaut') -> Release:
  """Adds a user whose ratings all fall in the eval split, with an occupation nobody in
  training has: an anomaly against the schema inferred from train."""
  from components.example_gen import ingest
  user_id = len(release.users) + 1
  release.users.append(User(user_id, 40, 'F', occupation, '00000'))
  for movie in release.movies:
    rating = {features.USER_ID: str(user_id), features.MOVIE_ID: str(movie.movie_id),
              features.TIMESTAMP: 881250949}
    if ingest.split_bucket(rating, 100) >= 80:
      release.ratings.append(Rating(user_id, movie.movie_id, 4, 881250949))
  return release


SCRIPT_TITLE = '<script>alert(1)</script>'
IMG_OCCUPATION = '"><img src=x onerror="document.body.dataset.pwned=1">'


def add_hostile_text(release: Release) -> Release:
  """Names the most-rated movie with a script tag (the statistics show it as the most
  frequent title) and adds an eval-only user whose occupation is an HTML attribute
  breakout (the anomaly it raises quotes it): text that must stay text in every report."""
  counts = {}
  for rating in release.ratings:
    counts[rating.movie_id] = counts.get(rating.movie_id, 0) + 1
  top = max(counts, key=counts.get)
  movie = next(m for m in release.movies if m.movie_id == top)
  movie.name = SCRIPT_TITLE
  return add_eval_only_user(release, occupation=IMG_OCCUPATION)


def read_release(directory: str):
  """(layout, {role: records}) of a release directory, asserting that no line is bad."""
  layout = layouts.detect_layout(directory, layouts.list_files(directory))
  tables = {}
  for role, table in layout.tables().items():
    records, bad = layouts.read_table(os.path.join(directory, table.file_name), table)
    assert bad == [], (table.file_name, bad[:3])
    tables[role] = records
  return layout, tables


def append_line(path: str, line: str, encoding: str = 'utf-8') -> None:
  with open(path, 'ab') as file:
    file.write((line + '\n').encode(encoding))
