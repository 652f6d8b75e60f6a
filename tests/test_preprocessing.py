"""preprocessing_fn on tiny inputs, with tf.Transform's own Beam implementation."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from modules import features
from modules import preprocessing
from pipeline import configs

# The features preprocessing_fn reads, as ExampleGen writes them (user features: 100k and 1M).
RAW_SPEC = features.raw_feature_spec([
    features.USER_ID, features.TIMESTAMP, features.MOVIE_TITLE, features.BUCKETIZED_USER_AGE,
    features.USER_GENDER, features.USER_OCCUPATION_TEXT, features.USER_ZIP_CODE])
_USERS = {b'1': (25.0, 1, b'writer', b'55414'), b'2': (18.0, 0, b'student', b' t8h1n'),
          b'3': (25.0, 0, b'writer', b'55105')}
_RATINGS = [(b'1', 1000, b'Toy Story (1995)'), (b'2', 2000, b'Toy Story (1995)'),
            (b'1', 3000, b'Heat (1995)'), (b'3', 5000, b"Schindler's List (1993)")]
ROWS = [dict(zip(RAW_SPEC, (user, timestamp, title, *_USERS[user])))
        for user, timestamp, title in _RATINGS]


@pytest.fixture(scope='module')
def transformed(tmp_path_factory):
  temp = str(tmp_path_factory.mktemp('tft'))
  metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
  with tft_beam.Context(temp_dir=temp):
    (rows, _), transform_fn = (ROWS, metadata) | tft_beam.AnalyzeAndTransformDataset(
        lambda inputs: preprocessing.preprocessing_fn(
            inputs, configs.Transform(timestamp_boundaries=5).custom_config()))
  output_dir = os.path.join(temp, 'output')
  _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
  return rows, tft.TFTransformOutput(output_dir)


def test_timestamps_fall_in_equal_width_buckets_between_min_and_max(transformed):
  rows, _ = transformed
  # Five boundaries 1000, 2000, 3000, 4000, 5000: six buckets.
  assert [row[features.TIMESTAMP_BUCKET] for row in rows] == [1, 2, 3, 5]
  z = np.array([row[features.TIMESTAMP_Z] for row in rows])
  assert abs(z.mean()) < 1e-6 and abs(z.std() - 1) < 1e-6


def test_user_ids_index_a_vocabulary_with_one_unknown_slot(transformed):
  rows, output = transformed
  vocabulary = output.vocabulary_by_name(features.USER_VOCABULARY)
  assert sorted(vocabulary) == [b'1', b'2', b'3']
  assert [vocabulary[row[features.USER_INDEX]] for row in rows] == [b'1', b'2', b'1', b'3']
  assert output.num_buckets_for_transformed_feature(features.USER_INDEX) == 4  # 3 users + unknown


def test_user_features_index_vocabularies_of_their_training_values(transformed):
  rows, output = transformed
  expected = {features.USER_AGE_INDEX: [b'25', b'18', b'25', b'25'],
              features.USER_GENDER_INDEX: [b'1', b'0', b'1', b'0'],
              features.USER_OCCUPATION_INDEX: [b'writer', b'student', b'writer', b'writer'],
              features.USER_ZIP_INDEX: [b'55', b'T8', b'55', b'55']}  # upper-cased prefixes
  for name, values in expected.items():
    vocabulary = output.vocabulary_by_name(name)
    assert [vocabulary[row[name]] for row in rows] == values, name
    assert output.num_buckets_for_transformed_feature(name) == len(vocabulary) + 1
  # At serving time, a value training never saw (or a request's empty one) is "unknown".
  layer = output.transform_features_layer()
  missing = layer({features.USER_ID: tf.constant(['1']),
                   features.TIMESTAMP: tf.constant([1000], tf.int64),
                   features.MOVIE_TITLE: tf.constant(['']),
                   **{feature.name: tf.reshape(features.unknown_value(feature), [1])
                      for feature in features.OPTIONAL_QUERY_FEATURES}})
  for name in expected:
    assert missing[name].numpy().tolist() == [len(output.vocabulary_by_name(name))], name


def test_the_title_vocabulary_is_of_its_words_only(transformed):
  rows, output = transformed
  titles = [row[features.MOVIE_TITLE] for row in rows]
  assert titles == [row[features.MOVIE_TITLE] for row in ROWS]
  # Only what the model reads: no vocabulary of whole titles (the catalog is the lookup).
  assets = os.listdir(os.path.join(output.transform_savedmodel_dir, 'assets'))
  assert features.TITLE_TOKEN_VOCABULARY in assets and features.MOVIE_TITLE not in assets
  tokens = set(output.vocabulary_by_name(features.TITLE_TOKEN_VOCABULARY))
  assert tokens == {b'toy', b'story', b'1995', b'heat', b'schindlers', b'list', b'1993'}


def test_title_tokens_match_text_vectorization():
  vectorizer = tf.keras.layers.TextVectorization()
  titles = tf.constant(["Schindler's List (1993)", 'Star Wars: Episode IV - A New Hope'])
  vectorizer.adapt(titles)
  ours = features.title_tokens(titles).to_list()
  theirs = [[vectorizer.get_vocabulary()[i] for i in row if i]
            for row in vectorizer(titles).numpy().tolist()]
  assert [[t.decode() for t in row] for row in ours] == theirs
