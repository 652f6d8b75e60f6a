"""The tutorial's code path, for comparison: TFRS' "Building deep retrieval models" model.

Raw features in (user id and title strings, integer timestamps), Keras preprocessing
layers inside the towers, tfrs.tasks.Retrieval with FactorizedTopK over the catalog,
Adagrad and model.fit, as the tutorial writes them. Only the data source differs: the
examples of this pipeline's ExampleGen, so both code paths see the same split.
"""
from typing import Dict, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

MAX_TOKENS = 10_000


class UserModel(tf.keras.Model):

  def __init__(self, user_ids: Sequence[bytes], timestamps: np.ndarray):
    super().__init__()
    buckets = np.linspace(timestamps.min(), timestamps.max(), num=1000)
    self.user_embedding = tf.keras.Sequential([
        tf.keras.layers.StringLookup(vocabulary=list(user_ids), mask_token=None),
        tf.keras.layers.Embedding(len(user_ids) + 1, 32)])
    self.timestamp_embedding = tf.keras.Sequential([
        tf.keras.layers.Discretization(buckets.tolist()),
        tf.keras.layers.Embedding(len(buckets) + 1, 32)])
    self.normalized_timestamp = tf.keras.layers.Normalization(axis=None)
    self.normalized_timestamp.adapt(timestamps)

  def call(self, inputs):
    return tf.concat([
        self.user_embedding(inputs['user_id']),
        self.timestamp_embedding(inputs['timestamp']),
        tf.reshape(self.normalized_timestamp(inputs['timestamp']), (-1, 1))], axis=1)


class MovieModel(tf.keras.Model):

  def __init__(self, titles: Sequence[bytes]):
    super().__init__()
    self.title_embedding = tf.keras.Sequential([
        tf.keras.layers.StringLookup(vocabulary=list(titles), mask_token=None),
        tf.keras.layers.Embedding(len(titles) + 1, 32)])
    self.title_vectorizer = tf.keras.layers.TextVectorization(max_tokens=MAX_TOKENS)
    self.title_text_embedding = tf.keras.Sequential([
        self.title_vectorizer,
        tf.keras.layers.Embedding(MAX_TOKENS, 32, mask_zero=True),
        tf.keras.layers.GlobalAveragePooling1D()])
    self.title_vectorizer.adapt(tf.constant(list(titles)))

  def call(self, titles):
    return tf.concat([self.title_embedding(titles), self.title_text_embedding(titles)], axis=1)


def _dense(layer_sizes: Sequence[int]) -> tf.keras.Sequential:
  dense = tf.keras.Sequential()
  for size in layer_sizes[:-1]:
    dense.add(tf.keras.layers.Dense(size, activation='relu'))
  dense.add(tf.keras.layers.Dense(layer_sizes[-1]))
  return dense


class MovielensModel(tfrs.models.Model):

  def __init__(self, layer_sizes: Sequence[int], user_ids, timestamps, titles):
    super().__init__()
    self.query_model = tf.keras.Sequential([UserModel(user_ids, timestamps),
                                            _dense(layer_sizes)])
    self.candidate_model = tf.keras.Sequential([MovieModel(titles), _dense(layer_sizes)])
    self.task = tfrs.tasks.Retrieval(metrics=tfrs.metrics.FactorizedTopK(
        candidates=tf.data.Dataset.from_tensor_slices(list(titles)).batch(128).map(
            self.candidate_model)))

  def compute_loss(self, features, training=False):
    query_embeddings = self.query_model({'user_id': features['user_id'],
                                         'timestamp': features['timestamp']})
    movie_embeddings = self.candidate_model(features['movie_title'])
    return self.task(query_embeddings, movie_embeddings, compute_metrics=not training)


def build(layer_sizes: Sequence[int], train: Dict[str, np.ndarray],
          eval_: Dict[str, np.ndarray], titles: Sequence[bytes]) -> MovielensModel:
  """The tutorial's model, compiled with its optimizer, on the same data as ours."""
  timestamps = np.concatenate([train['timestamp'], eval_['timestamp']])
  user_ids = np.unique(np.concatenate([train['user_id'], eval_['user_id']]))
  model = MovielensModel(layer_sizes, user_ids, timestamps, titles)
  model.compile(optimizer=tf.keras.optimizers.Adagrad(0.1))
  return model


def datasets(train: Dict[str, np.ndarray], eval_: Dict[str, np.ndarray]):
  """The tutorial's cached_train and cached_test."""
  cached_train = tf.data.Dataset.from_tensor_slices(train).shuffle(100_000).batch(2048).cache()
  cached_test = tf.data.Dataset.from_tensor_slices(eval_).batch(4096).cache()
  return cached_train, cached_test
