"""MovieLens as TensorFlow Datasets prepared it, written out in the release's own file layout.

The tutorial loads `tfds.load("movielens/100k-ratings")`, which leaves a prepared dataset in
~/tensorflow_datasets; `tfds build movielens/1m-ratings` (and `1m-movies`) prepares others.
This module reads such a dataset through the TFDS API (`tfds.builder_from_directory`, which
needs no builder code and reads any version) and writes the release's raw files, so that the
pipeline reads exactly the rows, features and catalog it reads from GroupLens' files:
  * `<config>-ratings` gives the ratings and each rater's features;
  * `<config>-movies` gives the catalog, rated or not.
100k is written in the 100k layout, 1m in the 1M layout, 20m/25m/latest-small as CSV.
"""
import csv
import glob
import itertools
import os
from typing import Dict, Iterator, Optional

from data import features as f
from data import layouts

_RATING_KEYS = (f.USER_ID, f.MOVIE_ID, f.USER_RATING, f.TIMESTAMP)
_USER_KEYS = {
    '100k': (f.RAW_USER_AGE, f.USER_GENDER, f.USER_OCCUPATION_TEXT, f.USER_ZIP_CODE),
    '1m': (f.BUCKETIZED_USER_AGE, f.USER_GENDER, f.USER_OCCUPATION_TEXT, f.USER_ZIP_CODE),
}
_BATCH = 8192


def _version(path: str):
  return tuple(int(part) if part.isdigit() else 0 for part in os.path.basename(path).split('.'))


def find_prepared(data_dir: str, config: str) -> Optional[str]:
  """The newest prepared version of movielens/<config> under a TFDS data directory."""
  found = [os.path.dirname(info) for info in
           glob.glob(os.path.join(data_dir, 'movielens', config, '*', 'dataset_info.json'))]
  return max(found, key=_version) if found else None


class NotPreparedError(LookupError):
  """TensorFlow Datasets has not prepared the dataset asked for; the message says how to."""


def _builder(data_dir: str, config: str):
  import tensorflow_datasets as tfds  # slow to import: only when a release is read from it
  path = find_prepared(data_dir, config)
  if path is None:
    raise NotPreparedError(
        f'TensorFlow Datasets has not prepared movielens/{config} in {data_dir}: prepare it '
        f'with `tfds build movielens/{config} --data_dir {data_dir}` (or '
        f'tfds.load("movielens/{config}", data_dir="{data_dir}") in Python), or pick another '
        'source')
  return tfds.builder_from_directory(path)


def _rows(builder, keys) -> Iterator[Dict[str, object]]:
  """The train split's examples, `keys` only, as Python values (bytes decoded)."""
  import tensorflow as tf
  import tensorflow_datasets as tfds
  dataset = builder.as_dataset(split='train', shuffle_files=False)
  dataset = dataset.map(lambda example: {key: example[key] for key in keys}).batch(_BATCH)
  for batch in tfds.as_numpy(dataset.prefetch(tf.data.AUTOTUNE)):
    columns = [[value.decode() if isinstance(value, bytes) else value.item()
                for value in batch[key]] for key in keys]
    for values in zip(*columns):
      yield dict(zip(keys, values))


def _movies(builder) -> Iterator[Dict[str, object]]:
  import tensorflow_datasets as tfds
  names = builder.info.features[f.MOVIE_GENRES].feature.names
  for example in tfds.as_numpy(builder.as_dataset(split='train', shuffle_files=False)):
    yield {f.MOVIE_ID: example[f.MOVIE_ID].decode(),
           f.MOVIE_TITLE: example[f.MOVIE_TITLE].decode(),
           f.MOVIE_GENRES: [names[index] for index in example[f.MOVIE_GENRES]]}


def write_release(data_dir: str, config: str, dest: str) -> None:
  """Writes movielens/<config>-ratings and -movies of a TFDS data directory into dest."""
  ratings = _builder(data_dir, f'{config}-ratings')
  movies = _builder(data_dir, f'{config}-movies')
  user_keys = _USER_KEYS.get(config, ())
  users: Dict[str, Dict[str, object]] = {}
  writer = {'100k': _write_100k, '1m': _write_1m}.get(config, _write_csv)
  writer(dest, _movies(movies), _collect_users(_rows(ratings, _RATING_KEYS + user_keys),
                                               user_keys, users), users)


def _collect_users(rows, user_keys, users):
  """The ratings, noting each rater's features in `users` on the way."""
  for row in rows:
    if user_keys and row[f.USER_ID] not in users:
      users[row[f.USER_ID]] = {key: row[key] for key in user_keys}
    yield row


def _gender(user) -> str:
  return 'M' if user[f.USER_GENDER] else 'F'


def _write_lines(path: str, lines, encoding: str = 'utf-8') -> None:
  with open(path, 'w', encoding=encoding, newline='\n') as file:
    for line in lines:
      file.write(line + '\n')


def _write_100k(dest, movies, ratings, users) -> None:
  genres_100k = layouts.GENRES_100K
  spelled = {f.GENRE_ALIASES.get(name, name): name for name in genres_100k}
  _write_lines(os.path.join(dest, 'u.item'), (
      '|'.join([m[f.MOVIE_ID], m[f.MOVIE_TITLE], '', '', '']
               + ['1' if name in {spelled.get(g, g) for g in m[f.MOVIE_GENRES]} else '0'
                  for name in genres_100k]) for m in movies), encoding='latin-1')
  _write_lines(os.path.join(dest, 'u.data'), (
      f'{r[f.USER_ID]}\t{r[f.MOVIE_ID]}\t{r[f.USER_RATING]:g}\t{r[f.TIMESTAMP]}'
      for r in ratings))
  _write_lines(os.path.join(dest, 'u.user'), (
      f'{u}|{int(user[f.RAW_USER_AGE])}|{_gender(user)}|{user[f.USER_OCCUPATION_TEXT]}|'
      f'{user[f.USER_ZIP_CODE]}' for u, user in users.items()))


def _write_1m(dest, movies, ratings, users) -> None:
  occupations = layouts.OCCUPATIONS_1M
  _write_lines(os.path.join(dest, 'movies.dat'), (
      f'{m[f.MOVIE_ID]}::{m[f.MOVIE_TITLE]}::{"|".join(m[f.MOVIE_GENRES])}' for m in movies),
      encoding='latin-1')
  _write_lines(os.path.join(dest, 'ratings.dat'), (
      f'{r[f.USER_ID]}::{r[f.MOVIE_ID]}::{r[f.USER_RATING]:g}::{r[f.TIMESTAMP]}'
      for r in ratings))
  _write_lines(os.path.join(dest, 'users.dat'), (
      f'{u}::{_gender(user)}::{int(user[f.BUCKETIZED_USER_AGE])}::'
      f'{occupations.index(user[f.USER_OCCUPATION_TEXT])}::{user[f.USER_ZIP_CODE]}'
      for u, user in users.items()))


def _write_csv(dest, movies, ratings, _) -> None:
  with open(os.path.join(dest, 'movies.csv'), 'w', newline='') as file:
    out = csv.writer(file, lineterminator='\n')
    out.writerow(['movieId', 'title', 'genres'])
    out.writerows([m[f.MOVIE_ID], m[f.MOVIE_TITLE], '|'.join(m[f.MOVIE_GENRES])]
                  for m in movies)
  _write_lines(os.path.join(dest, 'ratings.csv'), itertools.chain(
      ['userId,movieId,rating,timestamp'],
      (f'{r[f.USER_ID]},{r[f.MOVIE_ID]},{r[f.USER_RATING]:.1f},{r[f.TIMESTAMP]}'
       for r in ratings)))
