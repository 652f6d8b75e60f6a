"""MovieLens file layouts: which files a release has, and how a record is one line of each.

Each layout is one definition that both reads and writes: a file's name, its encoding, its
header, its separator, its columns in order, and the pair of functions that turn the fields
of a line into a record and a record back into fields. Every layout reads into the same
records, keyed by the TFDS feature names of the feature registry (data/features.py):
  ratings: user_id, movie_id, user_rating, timestamp
  movies:  movie_id, movie_title ("Toy Story (1995)"), movie_genres (TFDS genre ids)
  users:   user_id, bucketized_user_age, [raw_user_age], user_gender, user_occupation_text,
           user_zip_code
and writes such records (`write_table`, `write_release`): the synthetic releases, the tests'
releases and TensorFlow Datasets' MovieLens are written through these definitions.
A new release is supported by adding a `Layout` to `LAYOUTS`; nothing else changes.
"""
import csv
import dataclasses
import math
import os
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from data import features

Record = Dict[str, object]


class RowError(ValueError):
  """A line that cannot be read; the message says what is wrong with it."""


class LayoutError(ValueError):
  """A directory or file that is not in any MovieLens layout this project reads."""


@dataclasses.dataclass(frozen=True)
class Table:
  """One file of a layout.

  Attributes:
    file_name: the file's name in a release's directory.
    separator: what separates the fields of a line.
    columns: what each field is, in the file's order (also how a bad line is explained).
    parse: the fields of a line (as many as `columns`) to its record; raises RowError.
    format: a record to the fields of its line.
    header: the file's first line, for a file that has one.
    encoding: the file's text encoding.
    quoted: fields follow CSV's quoting (a title with a comma is in double quotes).
  """
  file_name: str
  separator: str
  columns: Tuple[str, ...]
  parse: Callable[[List[str]], Record]
  format: Callable[[Record], List[str]]
  header: Optional[str] = None
  encoding: str = 'utf-8'
  quoted: bool = False


@dataclasses.dataclass(frozen=True)
class Layout:
  name: str
  description: str
  ratings: Table
  movies: Table
  users: Optional[Table] = None  # MovieLens 20M and 25M have no user features.

  def tables(self) -> Dict[str, Table]:
    """The layout's files by role: 'ratings', 'movies' and, where present, 'users'."""
    tables = {'ratings': self.ratings, 'movies': self.movies}
    if self.users:
      tables['users'] = self.users
    return tables


# ---------------------------------------------------------------------------------------
# Field readers, each raising RowError with a message a person can act on, and writers.


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


_GENDER_CODES = {letter: code for code, letter in features.GENDERS.items()}


def _gender(value: str) -> int:
  if value not in _GENDER_CODES:
    raise RowError(f'gender {value!r} is neither M nor F')
  return _GENDER_CODES[value]


def _age(value: str) -> float:
  if not value.isdigit():
    raise RowError(f'age {value!r} is not a whole number')
  return float(value)


def _genres(names: Iterable[str]) -> List[int]:
  try:
    return sorted(features.genre_id(name) for name in names if name)
  except KeyError as error:
    raise RowError(f'unknown genre {error.args[0]!r}; '
                   f'known: {", ".join(features.GENRES)}') from None


def _genre_names(ids: Iterable[int], spellings: Tuple[str, ...]) -> List[str]:
  """A movie's genres (TFDS ids, in their order) as a file spells them."""
  spelled = {features.genre_id(name): name for name in spellings}
  return [spelled[genre] for genre in ids]


def _integer(value: object) -> str:
  """An age or an age group as the files write it: a whole number."""
  return str(int(value))


_RATING_COLUMNS = ('user id', 'movie id', 'rating', 'timestamp')


def _rating_record(fields: List[str]) -> Record:
  """A rating line's fields, in every layout: user id, movie id, rating, timestamp."""
  user, movie, rating, timestamp = fields
  return {features.USER_ID: _id(user, 'user id'), features.MOVIE_ID: _id(movie, 'movie id'),
          features.USER_RATING: _rating(rating), features.TIMESTAMP: _timestamp(timestamp)}


def _rating_fields(record: Record) -> List[str]:
  """A rating's fields; GroupLens writes the rating as 4 or 3.5 (f-strings: data.synthetic
  writes 25 million of these)."""
  return [f'{record[features.USER_ID]}', f'{record[features.MOVIE_ID]}',
          f'{record[features.USER_RATING]:g}', f'{record[features.TIMESTAMP]}']


def _csv_rating_fields(record: Record) -> List[str]:
  """A rating's fields in the CSV releases, which write every rating with a decimal: 4.0."""
  return [f'{record[features.USER_ID]}', f'{record[features.MOVIE_ID]}',
          f'{record[features.USER_RATING]:.1f}', f'{record[features.TIMESTAMP]}']


def _ratings(file_name: str, separator: str, header: Optional[str] = None) -> Table:
  return Table(file_name, separator, _RATING_COLUMNS, _rating_record, _rating_fields, header)


_YEARS_USER_COLUMNS = ('user id', 'age', 'gender', 'occupation', 'zip code')


def _years_user(fields: List[str]) -> Record:
  """A user line of a release that gives ages in years (100k): raw and bucketized age."""
  user, age, gender, occupation, zip_code = fields
  years = _age(age)
  return {features.USER_ID: _id(user, 'user id'), features.RAW_USER_AGE: years,
          features.BUCKETIZED_USER_AGE: features.bucketize_age(years),
          features.USER_GENDER: _gender(gender), features.USER_OCCUPATION_TEXT: occupation,
          features.USER_ZIP_CODE: zip_code}


def _years_user_fields(record: Record) -> List[str]:
  return [str(record[features.USER_ID]), _integer(record[features.RAW_USER_AGE]),
          features.GENDERS[int(record[features.USER_GENDER])],
          record[features.USER_OCCUPATION_TEXT], record[features.USER_ZIP_CODE]]


# ---------------------------------------------------------------------------------------
# GroupLens MovieLens 100k: u.data, u.item (latin-1), u.user.

# u.item's genre flags, in its order (GroupLens' u.genre); 1M spells its genres the same.
GENRES_100K = ('unknown', 'Action', 'Adventure', 'Animation', "Children's", 'Comedy',
               'Crime', 'Documentary', 'Drama', 'Fantasy', 'Film-Noir', 'Horror', 'Musical',
               'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western')
_ITEM_100K_COLUMNS = ('movie id', 'title', 'release date', 'video release date',
                      'IMDb URL') + tuple(f'{genre} flag' for genre in GENRES_100K)


def _grouplens_100k_movie(fields: List[str]) -> Record:
  flags = fields[5:]
  if any(flag not in ('0', '1') for flag in flags):
    raise RowError(f'genre flags must be 0 or 1, found {"|".join(flags)}')
  if not fields[1]:
    raise RowError('the title is empty')
  return {features.MOVIE_ID: _id(fields[0], 'movie id'), features.MOVIE_TITLE: fields[1],
          features.MOVIE_GENRES: _genres(g for g, flag in zip(GENRES_100K, flags)
                                         if flag == '1')}


def _grouplens_100k_movie_fields(record: Record) -> List[str]:
  # The records keep no release dates or IMDb URLs: those fields stay empty.
  genres = set(_genre_names(record[features.MOVIE_GENRES], GENRES_100K))
  return [str(record[features.MOVIE_ID]), record[features.MOVIE_TITLE], '', '', ''] + [
      '1' if genre in genres else '0' for genre in GENRES_100K]


GROUPLENS_100K = Layout(
    name='grouplens-100k',
    description='GroupLens MovieLens 100k (u.data, u.item, u.user)',
    ratings=_ratings('u.data', '\t'),
    movies=Table('u.item', '|', _ITEM_100K_COLUMNS, _grouplens_100k_movie,
                 _grouplens_100k_movie_fields, encoding='latin-1'),
    users=Table('u.user', '|', _YEARS_USER_COLUMNS, _years_user, _years_user_fields))


# ---------------------------------------------------------------------------------------
# RecBole's copy of MovieLens 100k: ml-100k.{inter,item,user}, tab-separated, typed header.
# Titles lack their year, which comes separately; movie 267's title and year read 'unkonwn'
# where GroupLens has the title 'unknown'.

_RECBOLE_UNKNOWN = 'unkonwn'


def _recbole_movie(fields: List[str]) -> Record:
  movie, title, year, genres = fields
  if not title or not year:
    raise RowError(f'title {title!r} and year {year!r} do not make a "Title (Year)" title')
  # The copy split GroupLens' title at its last parenthesis, so putting it back restores
  # "Title (Year)", and movie 1412's "... (1995) (V)" too.
  title = 'unknown' if title == year == _RECBOLE_UNKNOWN else f'{title} ({year})'
  return {features.MOVIE_ID: _id(movie, 'movie id'), features.MOVIE_TITLE: title,
          features.MOVIE_GENRES: _genres(genres.split(' '))}


def _recbole_movie_fields(record: Record) -> List[str]:
  title = record[features.MOVIE_TITLE]
  if title == 'unknown':
    name = year = _RECBOLE_UNKNOWN
  else:
    name, _, year = title[:-1].rpartition(' (')  # split at the last parenthesis, as RecBole
  return [str(record[features.MOVIE_ID]), name, year,
          ' '.join(_genre_names(record[features.MOVIE_GENRES], GENRES_100K))]


RECBOLE_100K = Layout(
    name='recbole-100k',
    description="RecBole's copy of MovieLens 100k (ml-100k.inter, ml-100k.item, ml-100k.user)",
    ratings=_ratings('ml-100k.inter', '\t',
                     header='user_id:token\titem_id:token\trating:float\ttimestamp:float'),
    movies=Table('ml-100k.item', '\t', ('movie id', 'title', 'year', 'genres'),
                 _recbole_movie, _recbole_movie_fields,
                 header='item_id:token\tmovie_title:token_seq\trelease_year:token\t'
                 'class:token_seq'),
    users=Table('ml-100k.user', '\t', _YEARS_USER_COLUMNS, _years_user, _years_user_fields,
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
_TITLE_GENRES_COLUMNS = ('movie id', 'title', 'genres')


def _title_genres_movie(fields: List[str]) -> Record:
  """A movie line of the 1M and CSV releases: id, "Title (Year)", '|'-separated genres."""
  movie, title, genres = fields
  if not title:
    raise RowError('the title is empty')
  return {features.MOVIE_ID: _id(movie, 'movie id'), features.MOVIE_TITLE: title,
          features.MOVIE_GENRES: _genres(genres.split('|'))}


def _title_genres_fields(record: Record, spellings: Tuple[str, ...]) -> List[str]:
  return [str(record[features.MOVIE_ID]), record[features.MOVIE_TITLE],
          '|'.join(_genre_names(record[features.MOVIE_GENRES], spellings))]


def _grouplens_1m_movie_fields(record: Record) -> List[str]:
  return _title_genres_fields(record, GENRES_100K)


def _grouplens_1m_user(fields: List[str]) -> Record:
  user, gender, age, occupation, zip_code = fields
  age_group = _age(age)
  if age_group not in features.AGE_BUCKETS:
    raise RowError(f'age group {age!r} is not one of '
                   f'{", ".join(map(str, features.AGE_BUCKETS))}')
  if not occupation.isdigit() or int(occupation) >= len(OCCUPATIONS_1M):
    raise RowError(f'occupation code {occupation!r} is not between 0 and 20')
  # 1M gives age groups only, so there is no raw age.
  return {features.USER_ID: _id(user, 'user id'), features.BUCKETIZED_USER_AGE: age_group,
          features.USER_GENDER: _gender(gender),
          features.USER_OCCUPATION_TEXT: OCCUPATIONS_1M[int(occupation)],
          features.USER_ZIP_CODE: zip_code}


def _grouplens_1m_user_fields(record: Record) -> List[str]:
  return [str(record[features.USER_ID]), features.GENDERS[int(record[features.USER_GENDER])],
          _integer(record[features.BUCKETIZED_USER_AGE]),
          str(OCCUPATIONS_1M.index(record[features.USER_OCCUPATION_TEXT])),
          record[features.USER_ZIP_CODE]]


GROUPLENS_1M = Layout(
    name='grouplens-1m',
    description='GroupLens MovieLens 1M (ratings.dat, movies.dat, users.dat)',
    ratings=_ratings('ratings.dat', '::'),
    movies=Table('movies.dat', '::', _TITLE_GENRES_COLUMNS, _title_genres_movie,
                 _grouplens_1m_movie_fields, encoding='latin-1'),
    users=Table('users.dat', '::', ('user id', 'gender', 'age', 'occupation', 'zip code'),
                _grouplens_1m_user, _grouplens_1m_user_fields))


# ---------------------------------------------------------------------------------------
# GroupLens MovieLens 20M/25M/latest: ratings.csv, movies.csv (quoted CSV), no user file.
# They spell genres as TFDS does.


def _csv_movie_fields(record: Record) -> List[str]:
  return _title_genres_fields(record, features.GENRES)


GROUPLENS_CSV = Layout(
    name='grouplens-csv',
    description='GroupLens MovieLens 20M, 25M or latest (ratings.csv, movies.csv)',
    ratings=Table('ratings.csv', ',', _RATING_COLUMNS, _rating_record, _csv_rating_fields,
                  header='userId,movieId,rating,timestamp', quoted=True),
    movies=Table('movies.csv', ',', _TITLE_GENRES_COLUMNS, _title_genres_movie,
                 _csv_movie_fields, header='movieId,title,genres', quoted=True))


LAYOUTS = {layout.name: layout
           for layout in (GROUPLENS_100K, RECBOLE_100K, GROUPLENS_1M, GROUPLENS_CSV)}


# ---------------------------------------------------------------------------------------
# Finding a directory's layout and reading its lines.


def detect_layout(directory: str, file_names: Iterable[str], name: str = 'auto') -> Layout:
  """The layout of a directory's files.

  Args:
    directory: the directory, as named in error messages.
    file_names: the names of the files it holds.
    name: a layout of LAYOUTS to insist on, or 'auto' to detect it from the ratings file.

  Returns:
    The layout; LayoutError saying what is missing or ambiguous when there is none.
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


def _fields(table: Table, text: str) -> List[str]:
  """The fields of a line of `table`, or RowError when there are not as many as columns."""
  fields = next(csv.reader([text])) if table.quoted else text.split(table.separator)
  if len(fields) != len(table.columns):
    shown = {'\t': 'tab', ',': 'comma'}.get(table.separator, repr(table.separator))
    raise RowError(f'expected {len(table.columns)} {shown}-separated fields '
                   f'({", ".join(table.columns)}), found {len(fields)}')
  return fields


def parse_line(table: Table, text: str, first_line: bool = False) -> Optional[Record]:
  """The record of one line of a table.

  Args:
    table: the table of a layout.
    text: the line, decoded, without its line ending.
    first_line: whether it is the file's first line (a header, for a table with one).

  Returns:
    The record, or None for the header. Raises RowError for a line that cannot be read,
    including a wrong header, which is how a file in another layout is recognised.
  """
  if table.header is not None and first_line:
    if text != table.header:
      raise RowError(f'the header should be {table.header!r} but is {text!r}: '
                     'is this file in another layout?')
    return None
  return table.parse(_fields(table, text))


def parse_raw_line(table: Table, raw: bytes, first_line: bool = False) -> Optional[Record]:
  """`parse_line` of an undecoded line, as read from the file with its line ending.

  Args:
    table: the table of a layout.
    raw: the line's bytes, in the table's encoding.
    first_line: whether it is the file's first line.

  Returns:
    The record, or None for the header; RowError for a line that cannot be read.
  """
  try:
    text = raw.decode(table.encoding)
  except UnicodeDecodeError as error:
    raise RowError(f'not valid {table.encoding}: {error.reason} at byte {error.start}') from None
  return parse_line(table, text.rstrip('\r\n'), first_line)


def iterate_table(path: str, table: Table
                  ) -> Iterator[Tuple[int, Optional[Record], Optional[str]]]:
  """Each line of a local file of a table, read; the header is skipped.

  Args:
    path: the file.
    table: its table.

  Returns:
    An iterator of (line number, record, None) for a line read and (line number, None,
    reason) for a bad one.
  """
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
  """All records of a local file of a table.

  Args:
    path: the file.
    table: its table.

  Returns:
    (its records, its bad lines as (line number, reason)).
  """
  records, bad = [], []
  for number, record, reason in iterate_table(path, table):
    if reason is None:
      records.append(record)
    else:
      bad.append((number, reason))
  return records, bad


def list_files(directory: str) -> List[str]:
  """The names of the regular files in a local directory.

  Args:
    directory: the directory.

  Returns:
    The names, sorted; LayoutError when `directory` is not a directory.
  """
  if not os.path.isdir(directory):
    raise LayoutError(f'{directory} is not a directory')
  return sorted(name for name in os.listdir(directory)
                if os.path.isfile(os.path.join(directory, name)))


# ---------------------------------------------------------------------------------------
# Writing records in a layout.


def write_table(path: str, table: Table, records: Iterable[Record]) -> None:
  """Writes records as the file of `table`: its header, then one line of each record.

  Args:
    path: the file to write (replaced).
    table: the table of a layout.
    records: records as the table's reader gives them (extra keys are ignored); read
      lazily, so a generator of many millions of ratings streams to the file.
  """
  lines = (table.format(record) for record in records)
  with open(path, 'w', encoding=table.encoding, newline='', buffering=1 << 22) as file:
    if table.header is not None:
      file.write(table.header + '\n')
    if table.quoted:  # csv quotes only the fields that need it, as GroupLens' files do
      csv.writer(file, lineterminator='\n').writerows(lines)
    else:
      file.writelines(table.separator.join(fields) + '\n' for fields in lines)


def write_release(directory: str, layout: Layout, ratings: Iterable[Record],
                  movies: Iterable[Record], users: Iterable[Record] = ()) -> List[str]:
  """Writes a release in `layout` into `directory` (created).

  Args:
    directory: where the release's files go.
    layout: the layout to write.
    ratings, movies, users: records of each file (users ignored by a layout without users).

  Returns:
    The names of the files written.
  """
  os.makedirs(directory, exist_ok=True)
  given = {'ratings': ratings, 'movies': movies, 'users': users}
  for role, table in layout.tables().items():
    write_table(os.path.join(directory, table.file_name), table, given[role])
  return [table.file_name for table in layout.tables().values()]
