"""The split and the example conversion, without a pipeline."""
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
