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
import glob
import os
from typing import Dict, Iterator, Optional

from data import features, layouts

_RATING_KEYS = (features.USER_ID, features.MOVIE_ID, features.USER_RATING, features.TIMESTAMP)
# The rater's features each TFDS release has (20M, 25M and latest have none).
_USER_KEYS = {
    '100k': (features.RAW_USER_AGE, features.USER_GENDER, features.USER_OCCUPATION_TEXT,
             features.USER_ZIP_CODE),
    '1m': (features.BUCKETIZED_USER_AGE, features.USER_GENDER, features.USER_OCCUPATION_TEXT,
           features.USER_ZIP_CODE),
}
# The layout each TFDS release is written in: its GroupLens files'.
_LAYOUTS = {'100k': layouts.GROUPLENS_100K, '1m': layouts.GROUPLENS_1M}
_BATCH = 8192


def _version(path: str):
  return tuple(int(part) if part.isdigit() else 0 for part in os.path.basename(path).split('.'))


def find_prepared(data_dir: str, config: str) -> Optional[str]:
  """The newest prepared version of movielens/<config> under a TFDS data directory.

  Args:
    data_dir: a TFDS data directory.
    config: a MovieLens config of TFDS, e.g. '100k-ratings'.

  Returns:
    The version's directory, or None when TFDS has not prepared the config there.
  """
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
  """The catalog's movies as the layouts' records (genres as ids of features.GENRES)."""
  import tensorflow_datasets as tfds
  names = builder.info.features[features.MOVIE_GENRES].feature.names
  for example in tfds.as_numpy(builder.as_dataset(split='train', shuffle_files=False)):
    yield {features.MOVIE_ID: example[features.MOVIE_ID].decode(),
           features.MOVIE_TITLE: example[features.MOVIE_TITLE].decode(),
           features.MOVIE_GENRES: [features.genre_id(names[index])
                                   for index in example[features.MOVIE_GENRES]]}


def write_release(data_dir: str, config: str, dest: str) -> None:
  """Writes movielens/<config>-ratings and -movies of a TFDS data directory into dest.

  Args:
    data_dir: a TFDS data directory (~/tensorflow_datasets).
    config: the release: '100k', '1m', '20m', '25m' or 'latest-small'.
    dest: the directory to write the release's files into, in its GroupLens layout
      (100k, 1M, or CSV for the others).
  """
  ratings = _builder(data_dir, f'{config}-ratings')
  movies = _builder(data_dir, f'{config}-movies')
  user_keys = _USER_KEYS.get(config, ())
  users: Dict[str, Dict[str, object]] = {}
  layout = _LAYOUTS.get(config, layouts.GROUPLENS_CSV)
  # Written in the layout's order, ratings first: the users are known once they are read.
  layouts.write_release(
      dest, layout, movies=_movies(movies), users=users.values(),
      ratings=_collect_users(_rows(ratings, _RATING_KEYS + user_keys), user_keys, users))


def _collect_users(rows, user_keys, users):
  """The ratings, noting each rater's features in `users` on the way."""
  for row in rows:
    if user_keys and row[features.USER_ID] not in users:
      users[row[features.USER_ID]] = {features.USER_ID: row[features.USER_ID],
                                       **{key: row[key] for key in user_keys}}
    yield row
