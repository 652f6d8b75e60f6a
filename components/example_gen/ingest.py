"""The Beam transform that turns a MovieLens directory into rating and catalog examples.

It reads each file line by line (so that a bad line is reported with its number), joins
every rating with its movie and user, splits the ratings by a stable hash and collects
every line it could not use as a bad row, with its file, line and reason.
"""
import json
import os
from typing import Dict, Sequence, Tuple

import apache_beam as beam
import farmhash
import tensorflow as tf
from tfx.dsl.io import fileio

from data import features as f
from data import layouts

BAD = 'bad'


def bad_row(path: str, line: int, reason: str) -> Dict[str, object]:
  return {'file': path, 'line': line, 'reason': reason}


def split_bucket(rating: Dict[str, object], total_buckets: int) -> int:
  """The split bucket of a rating: a stable hash of who rated what when.

  farmhash's fingerprint is the same on every machine and run, so the split is too.
  """
  key = f'{rating[f.USER_ID]}:{rating[f.MOVIE_ID]}:{rating[f.TIMESTAMP]}'
  return farmhash.fingerprint64(key) % total_buckets


def to_example(record: Dict[str, object]) -> tf.train.Example:
  """A tf.Example of a record: str as bytes, int as int64, float as float, lists as lists."""
  feature = {}
  for name, value in record.items():
    values = value if isinstance(value, list) else [value]
    if isinstance(value, str):
      feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
    elif isinstance(value, float):
      feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    else:
      feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  return tf.train.Example(features=tf.train.Features(feature=feature))


def _read_table(path: str, table: layouts.Table):
  """(line, record) for each line of a file; a bad line goes to the BAD output."""
  with fileio.open(path, 'rb') as lines:
    for number, raw in enumerate(lines, start=1):
      try:
        record = layouts.parse_raw_line(table, number, raw)
      except layouts.RowError as error:
        yield beam.pvalue.TaggedOutput(BAD, bad_row(path, number, str(error)))
        continue
      if record is not None:
        yield number, record


def _first_of_each_id(keyed, path: str, id_name: str):
  """The first record of an id, from (id, [(line, record), ...]); later ones are bad rows."""
  _, numbered = keyed
  numbered = sorted(numbered, key=lambda item: item[0])
  first_line, first = numbered[0]
  yield first[id_name], first
  for line, _ in numbered[1:]:
    yield beam.pvalue.TaggedOutput(BAD, bad_row(
        path, line, f'{id_name.replace("_", " ")} {first[id_name]} is already on line '
        f'{first_line}'))


def _join(numbered_rating, path: str, movies: Dict[str, dict], users: Dict[str, dict],
          movies_file: str, users_file: str):
  """A rating with its movie's and user's features, or a bad row naming what is missing."""
  line, rating = numbered_rating
  movie = movies.get(rating[f.MOVIE_ID])
  if movie is None:
    yield beam.pvalue.TaggedOutput(BAD, bad_row(
        path, line, f'movie id {rating[f.MOVIE_ID]} is not in {movies_file}'))
    return
  user = users.get(rating[f.USER_ID]) if users_file else {}
  if user is None:
    yield beam.pvalue.TaggedOutput(BAD, bad_row(
        path, line, f'user id {rating[f.USER_ID]} is not in {users_file}'))
    return
  yield {**rating, **movie, **user}


class IngestMovieLens(beam.PTransform):
  """Reads a MovieLens directory into rating examples by split, catalog examples, bad rows.

  Its output is a dict: one PCollection of tf.Examples per split name, 'catalog' (one
  tf.Example per movie), 'bad_rows' (dicts with file, line, reason) and 'counts'
  (a single dict of row counts).
  """

  def __init__(self, data_dir: str, layout: layouts.Layout,
               splits: Sequence[Tuple[str, int]]):
    super().__init__()
    self._data_dir = data_dir
    self._layout = layout
    self._splits = list(splits)  # (name, hash buckets)

  def _read(self, pipeline, role: str):
    table = self._layout.tables()[role]
    path = os.path.join(self._data_dir, table.file_name)
    return (pipeline
            | f'List{role}' >> beam.Create([path])
            | f'Read{role}' >> beam.FlatMap(_read_table, table).with_outputs(BAD, main='rows'))

  def _catalog(self, pipeline, role: str, id_name: str):
    """Unique (id, record) pairs of a movies or users file, and its bad rows."""
    read = self._read(pipeline, role)
    path = os.path.join(self._data_dir, self._layout.tables()[role].file_name)
    unique = (read.rows
              | f'Key{role}' >> beam.Map(lambda numbered: (numbered[1][id_name], numbered))
              | f'Group{role}' >> beam.GroupByKey()
              | f'Dedupe{role}' >> beam.FlatMap(_first_of_each_id, path, id_name).with_outputs(
                  BAD, main='rows'))
    return unique.rows, [read[BAD], unique[BAD]]

  def expand(self, pipeline):
    tables = self._layout.tables()
    movies, bad = self._catalog(pipeline, 'movies', f.MOVIE_ID)
    if 'users' in tables:
      users, bad_users = self._catalog(pipeline, 'users', f.USER_ID)
      bad += bad_users
    else:
      users = pipeline | 'NoUsers' >> beam.Create([])
    ratings = self._read(pipeline, 'ratings')
    bad.append(ratings[BAD])
    joined = (ratings.rows
              | 'Spread' >> beam.Reshuffle()
              | 'Join' >> beam.FlatMap(
                  _join, os.path.join(self._data_dir, tables['ratings'].file_name),
                  movies=beam.pvalue.AsDict(movies), users=beam.pvalue.AsDict(users),
                  movies_file=tables['movies'].file_name,
                  users_file=tables['users'].file_name if 'users' in tables else None
              ).with_outputs(BAD, main='rows'))
    bad.append(joined[BAD])

    total = sum(buckets for _, buckets in self._splits)
    bounds = [sum(b for _, b in self._splits[:i + 1]) for i in range(len(self._splits))]
    parts = joined.rows | 'Split' >> beam.Partition(
        lambda rating, _: next(i for i, bound in enumerate(bounds)
                               if split_bucket(rating, total) < bound), len(self._splits))
    outputs = {name: parts[i] | f'ToExample[{name}]' >> beam.Map(to_example)
               for i, (name, _) in enumerate(self._splits)}
    outputs['catalog'] = (movies
                          | 'CatalogRecord' >> beam.Values()
                          | 'ToExample[catalog]' >> beam.Map(to_example))
    outputs['bad_rows'] = bad | 'AllBadRows' >> beam.Flatten()

    counted = {**{f'examples_{name}': parts[i] for i, (name, _) in enumerate(self._splits)},
               'movies': movies, 'users': users, 'bad_rows': outputs['bad_rows']}
    outputs['counts'] = (
        [collection | f'Count[{name}]' >> beam.combiners.Count.Globally()
         | f'Name[{name}]' >> beam.Map(lambda count, name: (name, count), name)
         for name, collection in counted.items()]
        | 'AllCounts' >> beam.Flatten()
        | 'CountsToDict' >> beam.combiners.ToDict())
    return outputs


def write_json_lines(rows, path: str, label: str):
  """Writes a PCollection of dicts as one JSON-lines file."""
  return (rows
          | f'ToJson[{label}]' >> beam.Map(json.dumps, sort_keys=True)
          | f'Write[{label}]' >> beam.io.WriteToText(path, shard_name_template=''))
