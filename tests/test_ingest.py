"""The split and the example encoding, without TFX: records against the tf.train.Example
protos built with TensorFlow's own API, and a Beam run of the ingestion against the files
read and joined in plain Python."""
import collections
import glob
import os

import apache_beam as beam
import pytest
import tensorflow as tf

from components.example_gen import encoding
from components.example_gen import ingest
from data import features
from data import layouts
from shared import names
from tests import synthetic


def proto_example(record):
  """The reference: a tf.train.Example of a record built with the protobuf API (str as bytes,
  int as int64, float as float, a list as int64 values)."""
  feature = {}
  for name, value in record.items():
    if isinstance(value, str):
      feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
    elif isinstance(value, float):
      feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    else:
      values = value if isinstance(value, list) else [value]
      feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  return tf.train.Example(features=tf.train.Features(feature=feature))


def test_the_split_is_a_fixed_function_of_the_rating():
  # Pinned values: a change here would reshuffle every split (and break run-to-run
  # comparisons), so it must be deliberate.
  assert ingest.split_bucket({features.USER_ID: '196', features.MOVIE_ID: '242',
                              features.TIMESTAMP: 881250949}, 100) == 9
  assert ingest.split_bucket({features.USER_ID: '186', features.MOVIE_ID: '302',
                              features.TIMESTAMP: 891717742}, 100) == 18


def test_the_split_is_about_eighty_twenty():
  buckets = [ingest.split_bucket({features.USER_ID: str(u), features.MOVIE_ID: str(m),
                                  features.TIMESTAMP: 0}, 100)
             for u in range(100) for m in range(100)]
  share = sum(b < 80 for b in buckets) / len(buckets)
  assert 0.79 < share < 0.81


def test_examples_type_each_feature():
  example = tf.train.Example.FromString(encoding.examples([{
      features.USER_ID: '7', features.TIMESTAMP: 881250949, features.USER_RATING: 4.0,
      features.MOVIE_GENRES: [3, 4], features.MOVIE_TITLE: 'Misérables, Les (1995)'}])[0])
  feature = example.features.feature
  assert feature[features.USER_ID].bytes_list.value == [b'7']
  assert feature[features.TIMESTAMP].int64_list.value == [881250949]
  assert feature[features.USER_RATING].float_list.value == [4.0]
  assert feature[features.MOVIE_GENRES].int64_list.value == [3, 4]
  assert feature[features.MOVIE_TITLE].bytes_list.value == ['Misérables, Les (1995)'.encode()]


@pytest.mark.parametrize('records', [
    [{features.USER_ID: '7', features.TIMESTAMP: 881250949, features.USER_RATING: 4.5,
      features.MOVIE_ID: '1'},
     {features.USER_ID: '', features.TIMESTAMP: -5, features.USER_RATING: 0.1,
      features.MOVIE_ID: 'x' * 300}],
    [{features.MOVIE_GENRES: [3, 4, 20], features.MOVIE_TITLE: 'Misérables, Les (1995)'},
     {features.MOVIE_GENRES: [], features.MOVIE_TITLE: '<script>'}],
    [{features.USER_GENDER: 0, features.BUCKETIZED_USER_AGE: 18.0, features.USER_ZIP_CODE: '',
      features.RAW_USER_AGE: 1e-3, features.USER_OCCUPATION_TEXT: 'x' * 300}],
])
def test_encoded_examples_are_the_protos_of_their_records(records):
  assert [tf.train.Example.FromString(example) for example in encoding.examples(records)] == [
      proto_example(record) for record in records]


def test_ratings_joined_by_row_have_their_movie_and_user_features_and_no_second_id():
  movie_records = {
      '1': {features.MOVIE_ID: '1', features.MOVIE_TITLE: 'Toy Story (1995)',
            features.MOVIE_GENRES: [2, 3]},
      '9': {features.MOVIE_ID: '9', features.MOVIE_TITLE: 'Heat (1995)',
            features.MOVIE_GENRES: []}}
  movies = encoding.Lookup.of(list(movie_records.items()), features.MOVIE_ID)
  users = encoding.Lookup.of([('7', {features.USER_ID: '7', features.USER_GENDER: 1})],
                             features.USER_ID)
  assert movies.rows == {'1': 0, '9': 1}
  assert movies.columns.schema.names == [features.MOVIE_TITLE, features.MOVIE_GENRES]
  ratings = [{features.USER_ID: '7', features.MOVIE_ID: movie, features.TIMESTAMP: 5,
              features.USER_RATING: 4.0} for movie in ('9', '1', '1')]
  movie_rows = [movies.rows[rating[features.MOVIE_ID]] for rating in ratings]
  joined = encoding.joined_examples(ratings, [(movies, movie_rows), (users, [0, 0, 0])])
  expected = [{**rating, **movie_records[rating[features.MOVIE_ID]], features.USER_GENDER: 1}
              for rating in ratings]
  assert [tf.train.Example.FromString(example) for example in joined] == [
      proto_example(record) for record in expected]
  without_users = encoding.joined_examples(ratings, [(movies, movie_rows), (None, [0] * 3)])
  assert features.USER_GENDER not in tf.train.Example.FromString(
      without_users[0]).features.feature
  assert encoding.joined_examples([], [(movies, []), (users, [])]) == []


def expected_splits(data_dir, layout, splits):
  """The examples of each split and the catalog, from the files read, joined and split in
  plain Python: the ingestion's job, done without Beam or the encoder."""
  tables = layout.tables()
  read = {role: layouts.read_table(os.path.join(data_dir, table.file_name), table)[0]
          for role, table in tables.items()}
  movies = {record[features.MOVIE_ID]: record for record in read['movies']}
  users = {record[features.USER_ID]: record for record in read.get('users', [])}
  bounds = [sum(buckets for _, buckets in splits[:i + 1]) for i in range(len(splits))]
  examples = collections.defaultdict(list)
  for rating in read['ratings']:
    bucket = ingest.split_bucket(rating, bounds[-1])
    split = next(name for (name, _), bound in zip(splits, bounds) if bucket < bound)
    examples[split].append(proto_example({**rating, **movies[rating[features.MOVIE_ID]],
                                          **users.get(rating[features.USER_ID], {})}))
  examples[names.CATALOG_SPLIT] = [proto_example(movie) for movie in read['movies']]
  return examples


def written_examples(directory):
  """The tf.Examples of a split's gzipped TFRecord files, as TFX reads them."""
  files = sorted(glob.glob(os.path.join(directory, f'{ingest.EXAMPLES_FILE_PREFIX}-*.gz')))
  assert files, f'no TFRecord files in {directory}'
  return [tf.train.Example.FromString(record.numpy())
          for record in tf.data.TFRecordDataset(files, compression_type='GZIP')]


def as_multiset(examples):
  return collections.Counter(example.SerializeToString(deterministic=True)
                             for example in examples)


@pytest.mark.parametrize('layout_name', ['grouplens-100k', 'grouplens-1m', 'grouplens-csv'])
def test_every_split_holds_the_examples_of_its_ratings_joined_in_python(tmp_path, layout_name):
  release = synthetic.make_release(num_users=12, num_movies=15, num_ratings=150, seed=3)
  data_dir = synthetic.WRITERS[layout_name](release, str(tmp_path / 'data'))
  layout = layouts.LAYOUTS[layout_name]
  splits = [(names.TRAIN_SPLIT, 80), (names.EVAL_SPLIT, 20)]
  out = tmp_path / 'out'
  with beam.Pipeline() as pipeline:
    outputs = pipeline | ingest.IngestMovieLens(data_dir, layout, splits)
    for split in [name for name, _ in splits] + [names.CATALOG_SPLIT]:
      ingest.write_examples(outputs[split], str(out / split), split)
  expected = expected_splits(data_dir, layout, splits)
  assert sum(len(expected[name]) for name, _ in splits) == 150
  for split in [name for name, _ in splits] + [names.CATALOG_SPLIT]:
    assert as_multiset(written_examples(str(out / split))) == as_multiset(expected[split]), split
