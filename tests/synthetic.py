"""Small synthetic MovieLens releases, written in each layout the pipeline reads.

`make_release` draws users, movies and ratings from a seeded generator; the writers lay the
same release out as GroupLens 100k, RecBole's copy, GroupLens 1M or the CSV releases, so
tests can check that every layout reads into the same rows.
"""
import dataclasses
import os
import random
from typing import List

from data.features import GENRE_ALIASES  # the CSV releases' spellings
from data.layouts import OCCUPATIONS_1M

GENRES_100K = ('unknown', 'Action', 'Adventure', 'Animation', "Children's", 'Comedy', 'Crime',
               'Documentary', 'Drama', 'Fantasy', 'Film-Noir', 'Horror', 'Musical', 'Mystery',
               'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western')
OCCUPATIONS = ('student', 'engineer', 'writer', 'educator', 'other')
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
      user.occupation = OCCUPATIONS_1M[1 + user.user_id % num_groups]
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
  movies = [Movie(i, f'Movie {i}', 1990 + i % 10, rng.sample(GENRES_100K[1:], rng.randint(1, 3)))
            for i in range(1, count + 1)]
  movies[0].name = 'Misérables, Les'  # outside ASCII: u.item is latin-1, RecBole's UTF-8
  return movies


def _users(rng: random.Random, count: int) -> List[User]:
  return [User(i, rng.randint(7, 73), rng.choice('MF'), rng.choice(OCCUPATIONS),
               f'{rng.randint(0, 99999):05d}') for i in range(1, count + 1)]


def _ratings(rng: random.Random, pairs) -> List[Rating]:
  return [Rating(user, movie, rng.randint(1, 5), FIRST_TIMESTAMP + rng.randint(0, 10**7))
          for user, movie in sorted(pairs)]


def _write(path: str, lines: List[str], encoding: str = 'utf-8') -> str:
  with open(path, 'wb') as file:
    file.write(''.join(line + '\n' for line in lines).encode(encoding))
  return path


def write_grouplens_100k(release: Release, directory: str) -> str:
  os.makedirs(directory, exist_ok=True)
  _write(os.path.join(directory, 'u.data'),
         [f'{r.user_id}\t{r.movie_id}\t{r.rating}\t{r.timestamp}' for r in release.ratings])
  _write(os.path.join(directory, 'u.item'),
         ['|'.join([str(m.movie_id), m.title, f'01-Jan-{m.year}', '', 'http://x']
                   + ['1' if g in m.genres else '0' for g in GENRES_100K])
          for m in release.movies], encoding='latin-1')
  _write(os.path.join(directory, 'u.user'),
         [f'{u.user_id}|{u.age}|{u.gender}|{u.occupation}|{u.zip_code}' for u in release.users])
  return directory


def write_recbole_100k(release: Release, directory: str) -> str:
  os.makedirs(directory, exist_ok=True)
  _write(os.path.join(directory, 'ml-100k.inter'),
         ['user_id:token\titem_id:token\trating:float\ttimestamp:float']
         + [f'{r.user_id}\t{r.movie_id}\t{r.rating}\t{r.timestamp}' for r in release.ratings])
  _write(os.path.join(directory, 'ml-100k.item'),
         ['item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq']
         + [f'{m.movie_id}\t{m.name}\t{m.year}\t{" ".join(m.genres)}' for m in release.movies])
  _write(os.path.join(directory, 'ml-100k.user'),
         ['user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token']
         + [f'{u.user_id}\t{u.age}\t{u.gender}\t{u.occupation}\t{u.zip_code}'
            for u in release.users])
  return directory


def write_grouplens_1m(release: Release, directory: str) -> str:
  """1M gives age groups (18 for 18-24, ...) and occupation codes (4, college/grad student,
  for an occupation not in its list)."""
  os.makedirs(directory, exist_ok=True)
  _write(os.path.join(directory, 'ratings.dat'),
         [f'{r.user_id}::{r.movie_id}::{r.rating}::{r.timestamp}' for r in release.ratings])
  _write(os.path.join(directory, 'movies.dat'),
         [f'{m.movie_id}::{m.title}::{"|".join(m.genres)}' for m in release.movies],
         encoding='latin-1')
  _write(os.path.join(directory, 'users.dat'),
         [f'{u.user_id}::{u.gender}::{age_group(u.age)}::{_occupation_code(u.occupation)}::'
          f'{u.zip_code}' for u in release.users])
  return directory


def _occupation_code(occupation: str) -> int:
  """1M's code of an occupation in its list; 4 (college/grad student) for the others."""
  return OCCUPATIONS_1M.index(occupation) if occupation in OCCUPATIONS_1M else 4


def write_grouplens_csv(release: Release, directory: str) -> str:
  os.makedirs(directory, exist_ok=True)
  _write(os.path.join(directory, 'ratings.csv'),
         ['userId,movieId,rating,timestamp']
         + [f'{r.user_id},{r.movie_id},{r.rating}.0,{r.timestamp}' for r in release.ratings])
  _write(os.path.join(directory, 'movies.csv'),
         ['movieId,title,genres']
         + [f'{m.movie_id},"{m.title}",{"|".join(GENRE_ALIASES.get(g, g) for g in m.genres)}'
            for m in release.movies])
  return directory


def age_group(age: int) -> int:
  return max(bound for bound in (1, 18, 25, 35, 45, 50, 56) if bound <= age)


WRITERS = {
    'grouplens-100k': write_grouplens_100k,
    'recbole-100k': write_recbole_100k,
    'grouplens-1m': write_grouplens_1m,
    'grouplens-csv': write_grouplens_csv,
}


def add_eval_only_user(release: Release, occupation: str = 'astronaut') -> Release:
  """Adds a user whose ratings all fall in the eval split, with an occupation nobody in
  training has: an anomaly against the schema inferred from train."""
  from components.example_gen import ingest
  user_id = len(release.users) + 1
  release.users.append(User(user_id, 40, 'F', occupation, '00000'))
  for movie in release.movies:
    rating = {'user_id': str(user_id), 'movie_id': str(movie.movie_id), 'timestamp': 881250949}
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
  from data import layouts
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
