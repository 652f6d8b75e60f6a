"""The split and the example conversion, without a pipeline."""
import pytest
import tensorflow as tf

from components.example_gen import ingest
from data import features as f


def test_the_split_is_a_fixed_function_of_the_rating():
  # Pinned values: a change here would reshuffle every split (and break run-to-run
  # comparisons), so it must be deliberate.
  assert ingest.split_bucket({f.USER_ID: '196', f.MOVIE_ID: '242', f.TIMESTAMP: 881250949},
                             100) == 9
  assert ingest.split_bucket({f.USER_ID: '186', f.MOVIE_ID: '302', f.TIMESTAMP: 891717742},
                             100) == 18


def test_the_split_is_about_eighty_twenty():
  buckets = [ingest.split_bucket({f.USER_ID: str(u), f.MOVIE_ID: str(m), f.TIMESTAMP: 0}, 100)
             for u in range(100) for m in range(100)]
  share = sum(b < 80 for b in buckets) / len(buckets)
  assert 0.79 < share < 0.81


def test_to_example_types_each_feature():
  example = ingest.to_example({f.USER_ID: '7', f.TIMESTAMP: 881250949, f.USER_RATING: 4.0,
                               f.MOVIE_GENRES: [3, 4], f.MOVIE_TITLE: 'Misérables, Les (1995)'})
  feature = example.features.feature
  assert feature[f.USER_ID].bytes_list.value == [b'7']
  assert feature[f.TIMESTAMP].int64_list.value == [881250949]
  assert feature[f.USER_RATING].float_list.value == [4.0]
  assert feature[f.MOVIE_GENRES].int64_list.value == [3, 4]
  assert feature[f.MOVIE_TITLE].bytes_list.value == ['Misérables, Les (1995)'.encode()]
  assert isinstance(example, tf.train.Example)


@pytest.mark.parametrize('record', [
    {f.USER_ID: '7', f.TIMESTAMP: 881250949, f.USER_RATING: 4.5, f.MOVIE_ID: '1'},
    {f.MOVIE_GENRES: [3, 4, 20], f.MOVIE_TITLE: 'Misérables, Les (1995)', f.MOVIE_ID: '12'},
    {f.USER_GENDER: 0, f.BUCKETIZED_USER_AGE: 18.0, f.USER_ZIP_CODE: '', f.TIMESTAMP: -5,
     f.MOVIE_GENRES: [], f.RAW_USER_AGE: 1e-3, f.USER_OCCUPATION_TEXT: 'x' * 300},
])
def test_hand_serialized_features_parse_as_the_proto_of_to_example(record):
  parsed = tf.train.Features.FromString(ingest.features_bytes(record))
  assert parsed == ingest.to_example(record).features
  assert ingest.features_bytes(record) == tf.train.Features(
      feature=dict(sorted(ingest.to_example(record).features.feature.items()))
  ).SerializeToString(deterministic=True)


def test_features_serialized_apart_concatenate_into_the_joined_example():
  rating = {f.USER_ID: '7', f.MOVIE_ID: '1', f.TIMESTAMP: 881250949, f.USER_RATING: 4.0}
  movie = {f.MOVIE_TITLE: 'Toy Story (1995)', f.MOVIE_GENRES: [2, 3]}
  joined = ingest.example_bytes(*(ingest.features_bytes(r) for r in (rating, movie)))
  assert tf.train.Example.FromString(joined) == ingest.to_example({**rating, **movie})
  parsed = tf.io.parse_single_example(joined, {
      f.USER_ID: tf.io.FixedLenFeature([], tf.string),
      f.MOVIE_GENRES: tf.io.VarLenFeature(tf.int64)})
  assert parsed[f.USER_ID].numpy() == b'7'
  assert parsed[f.MOVIE_GENRES].values.numpy().tolist() == [2, 3]
