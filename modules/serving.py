"""The served model: the query tower behind the Transform graph, with the catalog inside.

One SavedModel that TF Serving (or plain TensorFlow) loads without this project's code:

  serving_default     examples: serialized tf.Examples with user_id and timestamp, and
                        optionally the user's features -> embedding
  embed               user_id (string), timestamp (int64) -> embedding
  retrieve            user_id, timestamp -> titles, scores: the k best catalog titles
  retrieve_excluding  user_id, timestamp, exclude (string [batch, n], '' pads)
                        -> the k best titles that the caller did not exclude
  embed_with_features, retrieve_with_features (releases with user features)
                      user_id, timestamp, bucketized_user_age (float), user_gender (int64,
                        1 male), user_occupation_text, user_zip_code -> as embed, retrieve;
                        -1 or '' for a feature the caller does not know

A feature a request does not carry is "unknown" to the model (the average of what it
learned), so a user never seen can be served by who they are, and any user by id alone.

Beside it, in assets.extra/ (which TF Serving ignores), the catalog's titles and their
embeddings, in the same order, for an external approximate-nearest-neighbour index.
"""
import json
import os
from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from modules import features as f

EXTRA_DIR = 'assets.extra'
TITLES_FILE = 'candidate_titles.json'
EMBEDDINGS_FILE = 'candidate_embeddings.npy'
SIGNATURES = ('serving_default', 'embed', 'retrieve', 'retrieve_excluding')
FEATURE_SIGNATURES = ('embed_with_features', 'retrieve_with_features')

_QUERY = [tf.TensorSpec([None], tf.string, name=f.USER_ID),
          tf.TensorSpec([None], tf.int64, name=f.TIMESTAMP)]
# The user features of a request, as ExampleGen writes them, and their value when unknown.
USER_FEATURE_SPECS = {f.BUCKETIZED_USER_AGE: (tf.float32, -1.0), f.USER_GENDER: (tf.int64, -1),
                      f.USER_OCCUPATION_TEXT: (tf.string, ''), f.USER_ZIP_CODE: (tf.string, '')}
_WITH_FEATURES = _QUERY + [tf.TensorSpec([None], dtype, name=name)
                           for name, (dtype, _) in USER_FEATURE_SPECS.items()]


class QueryModel(tf.Module):
  """Raw query features in; embeddings, or the best catalog titles, out."""

  def __init__(self, tft_output: tft.TFTransformOutput, query_tower: tf.keras.Model,
               titles: Sequence[str], candidate_embeddings: np.ndarray, k: int):
    super().__init__()
    if len(titles) != len(candidate_embeddings):
      raise ValueError(f'{len(titles)} titles but {len(candidate_embeddings)} embeddings')
    self.transform_layer = tft_output.transform_features_layer()  # tracked, so it is saved
    self.query_tower = query_tower
    self.raw_spec = tft_output.raw_feature_spec()
    # The release's user features (none for the CSV layout): the Transform graph needs them.
    self.user_features = [name for name in USER_FEATURE_SPECS if name in self.raw_spec]
    self.titles = tf.constant(list(titles))
    self.candidates = tf.Variable(candidate_embeddings.astype(np.float32), trainable=False,
                                  name='candidate_embeddings')
    self.title_index = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(self.titles, tf.range(len(titles), dtype=tf.int64)),
        default_value=-1)
    self.k = min(k, len(titles))

  def _raw_features(self, user_id: tf.Tensor, timestamp: tf.Tensor,
                    user: Optional[Dict[str, tf.Tensor]] = None) -> Dict[str, tf.Tensor]:
    # The Transform graph takes every raw feature it was built with; the candidate
    # side's title is not needed for a query, so an empty one fills its place, and a user
    # feature the request lacks gets its "unknown" value.
    values = {f.USER_ID: user_id, f.TIMESTAMP: timestamp,
              f.MOVIE_TITLE: tf.fill(tf.shape(user_id), '')}
    for name in self.user_features:
      dtype, unknown = USER_FEATURE_SPECS[name]
      values[name] = (user or {}).get(name, tf.fill(tf.shape(user_id),
                                                    tf.constant(unknown, dtype)))
    return {name: tf.reshape(value, [-1] + list(self.raw_spec[name].shape))
            for name, value in values.items()}

  def _embed(self, user_id: tf.Tensor, timestamp: tf.Tensor,
             user: Optional[Dict[str, tf.Tensor]] = None) -> tf.Tensor:
    tf.debugging.assert_positive(
        tf.size(user_id), message='empty request: pass at least one user_id and timestamp')
    tf.debugging.assert_equal(
        tf.size(user_id), tf.size(timestamp),
        message='user_id and timestamp must have the same length (one of each per query)')
    for name, value in (user or {}).items():
      tf.debugging.assert_equal(
          tf.size(user_id), tf.size(value),
          message=f'{name} must have one value per query (-1 or \'\' when unknown)')
    return self.query_tower(self.transform_layer(self._raw_features(user_id, timestamp, user)))

  def _top_k(self, scores: tf.Tensor) -> Dict[str, tf.Tensor]:
    best = tf.math.top_k(scores, k=self.k)
    return {'titles': tf.gather(self.titles, best.indices), 'scores': best.values}

  def _scores(self, user_id: tf.Tensor, timestamp: tf.Tensor) -> tf.Tensor:
    return tf.matmul(self._embed(user_id, timestamp), self.candidates, transpose_b=True)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def serving_default(self, examples):
    spec = {f.USER_ID: tf.io.FixedLenFeature([], tf.string),
            f.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64)}
    spec.update({name: tf.io.FixedLenFeature([], USER_FEATURE_SPECS[name][0],
                                             default_value=USER_FEATURE_SPECS[name][1])
                 for name in self.user_features})  # optional: unknown when absent
    features = tf.io.parse_example(examples, spec)
    user = {name: features[name] for name in self.user_features}
    return {'embedding': self._embed(features[f.USER_ID], features[f.TIMESTAMP], user)}

  @tf.function(input_signature=_WITH_FEATURES)
  def embed_with_features(self, user_id, timestamp, bucketized_user_age, user_gender,
                          user_occupation_text, user_zip_code):
    user = dict(zip(USER_FEATURE_SPECS, (bucketized_user_age, user_gender,
                                         user_occupation_text, user_zip_code)))
    return {'embedding': self._embed(user_id, timestamp, user)}

  @tf.function(input_signature=_WITH_FEATURES)
  def retrieve_with_features(self, user_id, timestamp, bucketized_user_age, user_gender,
                             user_occupation_text, user_zip_code):
    embedding = self.embed_with_features(user_id, timestamp, bucketized_user_age, user_gender,
                                         user_occupation_text, user_zip_code)['embedding']
    return self._top_k(tf.matmul(embedding, self.candidates, transpose_b=True))

  @tf.function(input_signature=_QUERY)
  def embed(self, user_id, timestamp):
    return {'embedding': self._embed(user_id, timestamp)}

  @tf.function(input_signature=_QUERY)
  def retrieve(self, user_id, timestamp):
    return self._top_k(self._scores(user_id, timestamp))

  @tf.function(input_signature=_QUERY + [tf.TensorSpec([None, None], tf.string, name='exclude')])
  def retrieve_excluding(self, user_id, timestamp, exclude):
    scores = self._scores(user_id, timestamp)
    tf.debugging.assert_equal(
        tf.shape(exclude)[0], tf.shape(scores)[0],
        message='exclude needs one row per query (pad rows with empty strings)')
    # (query, candidate) of each excluded title of the catalog; unknown titles and '' pads
    # are ignored.
    index = self.title_index.lookup(exclude)
    where = tf.where(index >= 0)
    pairs = tf.stack([where[:, 0], tf.gather_nd(index, where)], axis=1)
    scores = tf.tensor_scatter_nd_update(
        scores, pairs, tf.fill(tf.shape(pairs)[:1], tf.constant(-np.inf, scores.dtype)))
    return self._top_k(scores)


def export(directory: str, model: QueryModel) -> None:
  """Saves the model with its signatures, and the catalog's titles and embeddings."""
  names = SIGNATURES + (FEATURE_SIGNATURES if model.user_features else ())
  tf.saved_model.save(model, directory, signatures={
      name: getattr(model, name) for name in names})
  extra = os.path.join(directory, EXTRA_DIR)
  tf.io.gfile.makedirs(extra)
  with tf.io.gfile.GFile(os.path.join(extra, TITLES_FILE), 'w') as file:
    json.dump([t.decode() for t in model.titles.numpy()], file)
  with tf.io.gfile.GFile(os.path.join(extra, EMBEDDINGS_FILE), 'wb') as file:
    np.save(file, model.candidates.numpy())


def read_catalog(directory: str):
  """The titles and embeddings exported beside a served model."""
  extra = os.path.join(directory, EXTRA_DIR)
  with tf.io.gfile.GFile(os.path.join(extra, TITLES_FILE)) as file:
    titles = json.load(file)
  with tf.io.gfile.GFile(os.path.join(extra, EMBEDDINGS_FILE), 'rb') as file:
    embeddings = np.load(file)
  return titles, embeddings
