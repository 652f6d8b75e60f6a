"""MovieLens file layouts: which files a release has and how one line of each becomes a record.

Every layout reads into the same records, keyed by the TFDS feature names of `features`:
  ratings: user_id, movie_id, user_rating, timestamp
  movies:  movie_id, movie_title ("Toy Story (1995)"), movie_genres (TFDS genre ids)
  users:   user_id, bucketized_user_age, [raw_user_age], user_gender, user_occupation_text,
           user_zip_code
A new release is supported by adding a `Layout` to `LAYOUTS`; nothing else changes.
"""
import csv
import dataclasses
import functools
import math
import os
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from data import features as f

Record = Dict[str, object]


class RowError(ValueError):
  """A line that cannot be read; the message says what is wrong with it."""


class LayoutError(ValueError):
  """A directory or file that is not in any MovieLens layout this project reads."""


@dataclasses.dataclass(frozen=True)
class Table:
  """One file of a layout: its name, its first line if it has a header, and its parser."""
  file_name: str
  parse: Callable[[str], Record]
  header: Optional[str] = None
  encoding: str = 'utf-8'


@dataclasses.dataclass(frozen=True)
class Layout:
  name: str
  description: str
  ratings: Table
  movies: Table
  users: Optional[Table] = None  # MovieLens 25M has no user features.

  def tables(self) -> Dict[str, Table]:
    """The layout's files by role: 'ratings', 'movies' and, where present, 'users'."""
    tables = {'ratings': self.ratings, 'movies': self.movies}
    if self.users:
      tables['users'] = self.users
    return tables


# ---------------------------------------------------------------------------------------
# Field helpers: each raises RowError with a message a person can act on.


def _split(line: str, separator: str, names: Tuple[str, ...]) -> List[str]:
  fields = line.split(separator)
  if len(fields) != len(names):
    shown = 'tab' if separator == '\t' else repr(separator)
    raise RowError(f'expected {len(names)} {shown}-separated fields ({", ".join(names)}), '
                   f'found {len(fields)}')
  return fields


def _id(value: str, what: str) -> str:
  if not value.isdigit():
    raise RowError(f'{what} {value!r} is not a number')
  return str(int(value))  # '007' and '7' are the same id


def _timestamp(value: str) -> int:
  try:
    number = float(value)
  except ValueError:
    raise RowError(f'timestamp {value!r} is not a number') from None
  if not (math.isfinite(number) and number.is_integer() and number >= 0):
    raise RowError(f'timestamp {value!r} is not a whole number of seconds since 1970')
  return int(number)


def _rating(value: str) -> float:
  try:
    rating = float(value)
  except ValueError:
    raise RowError(f'rating {value!r} is not a number') from None
  if not 0.5 <= rating <= 5:
    raise RowError(f'rating {value!r} is outside the MovieLens scale of 0.5 to 5 stars')
  return rating


def _gender(value: str) -> int:
  if value not in ('M', 'F'):
    raise RowError(f'gender {value!r} is neither M nor F')
  return int(value == 'M')


def _age(value: str) -> float:
  if not value.isdigit():
    raise RowError(f'age {value!r} is not a whole number')
  return float(value)


def _genres(names: Iterable[str]) -> List[int]:
  try:
    return sorted(f.genre_id(name) for name in names if name)
  except KeyError as error:
    raise RowError(f'unknown genre {error.args[0]!r}; known: {", ".join(f.GENRES)}') from None


_RATING_FIELDS = ('user id', 'movie id', 'rating', 'timestamp')


def _rating_record(user: str, movie: str, rating: str, timestamp: str) -> Record:
  return {f.USER_ID: _id(user, 'user id'), f.MOVIE_ID: _id(movie, 'movie id'),
          f.USER_RATING: _rating(rating), f.TIMESTAMP: _timestamp(timestamp)}


def _delimited_rating(separator: str, line: str) -> Record:
  """A rating line of user id, movie id, rating, timestamp (every release but the CSV ones)."""
  return _rating_record(*_split(line, separator, _RATING_FIELDS))


def _years_user(separator: str, line: str) -> Record:
  """A user line of a release that gives ages in years (100k): raw and bucketized age."""
  user, age, gender, occupation, zip_code = _split(
      line, separator, ('user id', 'age', 'gender', 'occupation', 'zip code'))
  years = _age(age)
  return {f.USER_ID: _id(user, 'user id'), f.RAW_USER_AGE: years,
          f.BUCKETIZED_USER_AGE: f.bucketize_age(years), f.USER_GENDER: _gender(gender),
          f.USER_OCCUPATION_TEXT: occupation, f.USER_ZIP_CODE: zip_code}


# ---------------------------------------------------------------------------------------
# GroupLens MovieLens 100k: u.data, u.item (latin-1), u.user.

GENRES_100K = ('unknown', 'Action', 'Adventure', 'Animation', "Children's", 'Comedy',
                'Crime', 'Documentary', 'Drama', 'Fantasy', 'Film-Noir', 'Horror', 'Musical',
                'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western')


def _grouplens_100k_movie(line: str) -> Record:
  names = ('movie id', 'title', 'release date', 'video release date', 'IMDb URL') + tuple(
      f'{genre} flag' for genre in GENRES_100K)
  fields = _split(line, '|', names)
  flags = fields[5:]
  if any(flag not in ('0', '1') for flag in flags):
    raise RowError(f'genre flags must be 0 or 1, found {"|".join(flags)}')
  if not fields[1]:
    raise RowError('the title is empty')
  return {f.MOVIE_ID: _id(fields[0], 'movie id'), f.MOVIE_TITLE: fields[1],
          f.MOVIE_GENRES: _genres(g for g, flag in zip(GENRES_100K, flags) if flag == '1')}


GROUPLENS_100K = Layout(
    name='grouplens-100k',
    description='GroupLens MovieLens 100k (u.data, u.item, u.user)',
    ratings=Table('u.data', functools.partial(_delimited_rating, '\t')),
    movies=Table('u.item', _grouplens_100k_movie, encoding='latin-1'),
    users=Table('u.user', functools.partial(_years_user, '|')))


# ---------------------------------------------------------------------------------------
# RecBole's copy of MovieLens 100k: ml-100k.{inter,item,user}, tab-separated, typed header.
# Titles lack their year, which comes separately; movie 267's title and year read 'unkonwn'
# where GroupLens has the title 'unknown'.


def _recbole_movie(line: str) -> Record:
  movie, title, year, genres = _split(line, '\t', ('movie id', 'title', 'year', 'genres'))
  if not title or not year:
    raise RowError(f'title {title!r} and year {year!r} do not make a "Title (Year)" title')
  # The copy split GroupLens' title at its last parenthesis, so putting it back restores
  # "Title (Year)", and movie 1412's "... (1995) (V)" too.
  title = 'unknown' if title == year == 'unkonwn' else f'{title} ({year})'
  return {f.MOVIE_ID: _id(movie, 'movie id'), f.MOVIE_TITLE: title,
          f.MOVIE_GENRES: _genres(genres.split(' '))}


RECBOLE_100K = Layout(
    name='recbole-100k',
    description="RecBole's copy of MovieLens 100k (ml-100k.inter, ml-100k.item, ml-100k.user)",
    ratings=Table('ml-100k.inter', functools.partial(_delimited_rating, '\t'),
                  header='user_id:token\titem_id:token\trating:float\ttimestamp:float'),
    movies=Table('ml-100k.item', _recbole_movie,
                 header='item_id:token\tmovie_title:token_seq\trelease_year:token\t'
                 'class:token_seq'),
    users=Table('ml-100k.user', functools.partial(_years_user, '\t'),
                header='user_id:token\tage:token\tgender:token\toccupation:token\t'
                'zip_code:token'))


# ---------------------------------------------------------------------------------------
# GroupLens MovieLens 1M: ratings.dat, movies.dat (latin-1), users.dat, '::'-separated.
# Ages are already age groups; occupations are codes.

OCCUPATIONS_1M = (
    'other/not specified', 'academic/educator', 'artist', 'clerical/admin',
    'college/grad student', 'customer service', 'doctor/health care', 'executive/managerial',
    'farmer', 'homemaker', 'K-12 student', 'lawyer', 'programmer', 'retired', 'sales/marketing',
    'scientist', 'self-employed', 'technician/engineer', 'tradesman/craftsman', 'unemployed',
    'writer')


def _grouplens_1m_movie(line: str) -> Record:
  movie, title, genres = _split(line, '::', ('movie id', 'title', 'genres'))
  if not title:
    raise RowError('the title is empty')
  return {f.MOVIE_ID: _id(movie, 'movie id'), f.MOVIE_TITLE: title,
          f.MOVIE_GENRES: _genres(genres.split('|'))}


def _grouplens_1m_user(line: str) -> Record:
  user, gender, age, occupation, zip_code = _split(
      line, '::', ('user id', 'gender', 'age', 'occupation', 'zip code'))
  age_group = _age(age)
  if age_group not in f.AGE_BUCKETS:
    raise RowError(f'age group {age!r} is not one of {", ".join(map(str, f.AGE_BUCKETS))}')
  if not occupation.isdigit() or int(occupation) >= len(OCCUPATIONS_1M):
    raise RowError(f'occupation code {occupation!r} is not between 0 and 20')
  # 1M gives age groups only, so there is no raw age.
  return {f.USER_ID: _id(user, 'user id'), f.BUCKETIZED_USER_AGE: age_group,
          f.USER_GENDER: _gender(gender),
          f.USER_OCCUPATION_TEXT: OCCUPATIONS_1M[int(occupation)], f.USER_ZIP_CODE: zip_code}


GROUPLENS_1M = Layout(
    name='grouplens-1m',
    description='GroupLens MovieLens 1M (ratings.dat, movies.dat, users.dat)',
    ratings=Table('ratings.dat', functools.partial(_delimited_rating, '::')),
    movies=Table('movies.dat', _grouplens_1m_movie, encoding='latin-1'),
    users=Table('users.dat', _grouplens_1m_user))


# ---------------------------------------------------------------------------------------
# GroupLens MovieLens 20M/25M/latest: ratings.csv, movies.csv (quoted CSV), no user file.


def _csv_fields(line: str, names: Tuple[str, ...]) -> List[str]:
  fields = next(csv.reader([line]))
  if len(fields) != len(names):
    raise RowError(f'expected {len(names)} comma-separated fields ({", ".join(names)}), '
                   f'found {len(fields)}')
  return fields


def _grouplens_csv_rating(line: str) -> Record:
  return _rating_record(*_csv_fields(line, _RATING_FIELDS))


def _grouplens_csv_movie(line: str) -> Record:
  movie, title, genres = _csv_fields(line, ('movie id', 'title', 'genres'))
  if not title:
    raise RowError('the title is empty')
  return {f.MOVIE_ID: _id(movie, 'movie id'), f.MOVIE_TITLE: title,
          f.MOVIE_GENRES: _genres(genres.split('|'))}


GROUPLENS_CSV = Layout(
    name='grouplens-csv',
    description='GroupLens MovieLens 20M, 25M or latest (ratings.csv, movies.csv)',
    ratings=Table('ratings.csv', _grouplens_csv_rating,
                  header='userId,movieId,rating,timestamp'),
    movies=Table('movies.csv', _grouplens_csv_movie, header='movieId,title,genres'))


LAYOUTS = {layout.name: layout
           for layout in (GROUPLENS_100K, RECBOLE_100K, GROUPLENS_1M, GROUPLENS_CSV)}


# ---------------------------------------------------------------------------------------
# Finding a directory's layout and reading its lines.


def detect_layout(directory: str, file_names: Iterable[str], name: str = 'auto') -> Layout:
  """The layout of a directory holding `file_names`, or LayoutError saying what is missing.

  `name` forces a layout ('auto' detects it from the ratings file present).
  """
  present = set(file_names)
  if name != 'auto':
    if name not in LAYOUTS:
      raise LayoutError(f'unknown layout {name!r}; choose one of: auto, {", ".join(LAYOUTS)}')
    candidates = [LAYOUTS[name]]
  else:
    candidates = [layout for layout in LAYOUTS.values() if layout.ratings.file_name in present]
  if len(candidates) > 1:
    raise LayoutError(
        f'{directory} holds the files of several layouts '
        f'({", ".join(layout.name for layout in candidates)}); keep one release per directory '
        'or name the layout')
  if not candidates:
    expected = '; '.join(f'{layout.description}' for layout in LAYOUTS.values())
    raise LayoutError(f'{directory} holds no MovieLens ratings file. Expected one of: {expected}')
  layout = candidates[0]
  missing = [t.file_name for t in layout.tables().values() if t.file_name not in present]
  if missing:
    raise LayoutError(f'{directory} looks like {layout.description} but lacks '
                      f'{", ".join(missing)}')
  return layout


def parse_line(table: Table, text: str, first_line: bool = False) -> Optional[Record]:
  """The record of one line of `table`, or None for its header (the file's first line).

  Raises RowError for a line that cannot be read, including a wrong header, which is how a
  file in another layout is recognised.
  """
  if table.header is not None and first_line:
    if text != table.header:
      raise RowError(f'the header should be {table.header!r} but is {text!r}: '
                     'is this file in another layout?')
    return None
  return table.parse(text)


def parse_raw_line(table: Table, raw: bytes, first_line: bool = False) -> Optional[Record]:
  """`parse_line` of an undecoded line, as read from the file with its line ending."""
  try:
    text = raw.decode(table.encoding)
  except UnicodeDecodeError as error:
    raise RowError(f'not valid {table.encoding}: {error.reason} at byte {error.start}') from None
  return parse_line(table, text.rstrip('\r\n'), first_line)


def iterate_table(path: str, table: Table
                  ) -> Iterator[Tuple[int, Optional[Record], Optional[str]]]:
  """(line number, record, None) for each line of a local file, (line number, None, reason)
  for a bad one; the header is skipped."""
  with open(path, 'rb') as lines:
    for number, raw in enumerate(lines, start=1):
      try:
        record = parse_raw_line(table, raw, number == 1)
      except RowError as error:
        yield number, None, str(error)
        continue
      if record is not None:
        yield number, record, None


def read_table(path: str, table: Table) -> Tuple[List[Record], List[Tuple[int, str]]]:
  """All records of a local file and its bad lines as (line number, reason)."""
  records, bad = [], []
  for number, record, reason in iterate_table(path, table):
    if reason is None:
      records.append(record)
    else:
      bad.append((number, reason))
  return records, bad


def list_files(directory: str) -> List[str]:
  """The names of the regular files in a local directory, or LayoutError if there is none."""
  if not os.path.isdir(directory):
    raise LayoutError(f'{directory} is not a directory')
  return sorted(name for name in os.listdir(directory)
                if os.path.isfile(os.path.join(directory, name)))
