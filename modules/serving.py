"""The served model: the query tower behind the Transform graph, with the catalog inside.

One SavedModel that TF Serving (or plain TensorFlow) loads without this project's code:

  serving_default     examples: serialized tf.Examples with user_id and timestamp, and
                        optionally the user's features -> embedding
  embed               user_id (string), timestamp (int64) -> embedding
  retrieve            user_id, timestamp, k -> titles, scores: the k best catalog titles
  retrieve_excluding  user_id, timestamp, exclude (string [batch, n], '' pads), k
                        -> the k best titles that the caller did not exclude
  embed_with_features, retrieve_with_features (releases with user features)
                      user_id, timestamp and every optional query feature of the registry
                        (data/features.py): bucketized_user_age (float), user_gender (int64,
                        1 male), user_occupation_text, user_zip_code (, k) -> as embed,
                        retrieve; -1 or '' for a feature the caller does not know

k (int32: a scalar, or one per query, the same for the whole request) is at most the maximum
fixed at export (--serving-k, capped at the catalog's size), which is also its default: the
retrieve signatures' SignatureDefs carry it in their `defaults`, which TF Serving's gRPC
Predict fills in for a request without k (its REST API and TensorFlow's Python loader want
k). A k outside 1..maximum fails with InvalidArgumentError naming the range.

A feature a request does not carry is "unknown" to the model (the average of what it
learned), so a user never seen can be served by who they are, and any user by id alone.

Beside it, in assets.extra/ (which TF Serving ignores), the catalog's titles and their
embeddings, in the same order, for an external approximate-nearest-neighbour index.
"""
import functools
import inspect
import json
import os
from typing import Callable, Dict, List, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from modules import features

EXTRA_DIR = 'assets.extra'
TITLES_FILE = 'candidate_titles.json'
EMBEDDINGS_FILE = 'candidate_embeddings.npy'
SIGNATURES = ('serving_default', 'embed', 'retrieve', 'retrieve_excluding')
FEATURE_SIGNATURES = ('embed_with_features', 'retrieve_with_features')
K = 'k'  # the retrieve signatures' input: how many titles to return

# The query features every request carries; and those with the optional ones (the user's).
_QUERY = features.serving_inputs(with_optional=False)
_WITH_FEATURES = features.serving_inputs(with_optional=True)
_EXCLUDE = tf.TensorSpec([None, None], tf.string, name='exclude')
# The user features a request may carry, as ExampleGen writes them, and their value when
# unknown: {name: (dtype, unknown value)}.
USER_FEATURE_SPECS = {feature.name: (features.dtype(feature), feature.unknown)
                      for feature in features.OPTIONAL_QUERY_FEATURES}


class QuerySide(tf.Module):
  """The query tower behind the Transform graph: `embed` takes the raw query features of
  the release (user_id, timestamp and its user features, each [batch]) and gives their
  embeddings. The served model keeps it as `query_side`, so that a catalog refresh
  (modules/catalog_refresh.py) serves the same queries from the loaded SavedModel, without
  the Transform output or the tower's classes.

  Args:
    tft_output: Transform's output, whose graph turns the raw features into the tower's.
    query_tower: the trained query tower.
  """

  def __init__(self, tft_output: tft.TFTransformOutput, query_tower: tf.keras.Model):
    super().__init__()
    self.transform_layer = tft_output.transform_features_layer()  # tracked, so it is saved
    self.query_tower = query_tower
    self.raw_spec = tft_output.raw_feature_spec()
    # The release's user features (none for the CSV layout): the Transform graph needs them.
    inputs = [features.USER_ID, features.TIMESTAMP] + [
        feature.name for feature in features.OPTIONAL_QUERY_FEATURES
        if feature.name in self.raw_spec]
    self.embed = tf.function(self._embed, input_signature=[{
        name: tf.TensorSpec([None], features.dtype(features.BY_NAME[name]), name=name)
        for name in inputs}])

  def _embed(self, query: Dict[str, tf.Tensor]) -> tf.Tensor:
    # The Transform graph takes every raw feature it was built with. The candidate side's
    # (the title) is not needed for a query, so an empty one fills its place.
    batch = tf.shape(query[features.USER_ID])
    values = {feature.name: tf.zeros(batch, features.dtype(feature))  # '' for text
              for feature in features.FEATURES
              if feature.tower == features.CANDIDATE and feature.rule is not None}
    values.update(query)
    raw = {name: tf.reshape(value, [-1] + list(self.raw_spec[name].shape))
           for name, value in values.items()}
    return self.query_tower(self.transform_layer(raw))


def query_features(query_side: tf.Module) -> List[str]:
  """The raw features a query side's `embed` takes, a trained or a loaded one's.

  Args:
    query_side: a QuerySide, or one restored by tf.saved_model.load.

  Returns:
    Their names: user_id, timestamp, then the release's user features.
  """
  concrete = query_side.embed.concrete_functions[0] if hasattr(
      query_side.embed, 'concrete_functions') else query_side.embed.get_concrete_function()
  return list(concrete.structured_input_signature[0][0])


class QueryModel(tf.Module):
  """Raw query features in; embeddings, or the best catalog titles, out.

  Args:
    query_side: the query tower behind the Transform graph (QuerySide, or the `query_side`
      of a served model loaded back).
    titles: the catalog's titles.
    candidate_embeddings: their embeddings, row for row.
    max_k: the most titles a retrieve request may ask for, and what one that does not say
      gets (capped at the catalog's size).
  """

  def __init__(self, query_side: tf.Module, titles: Sequence[str],
               candidate_embeddings: np.ndarray, max_k: int):
    super().__init__()
    if len(titles) != len(candidate_embeddings):
      raise ValueError(f'{len(titles)} titles but {len(candidate_embeddings)} embeddings')
    self.query_side = query_side
    # The release's user features (none for the CSV layout).
    self.user_features = [features.BY_NAME[name] for name in query_features(query_side)
                          if features.BY_NAME[name].optional]
    self.titles = tf.constant(list(titles))
    self.candidates = tf.Variable(candidate_embeddings.astype(np.float32), trainable=False,
                                  name='candidate_embeddings')
    self.title_index = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(self.titles, tf.range(len(titles), dtype=tf.int64)),
        default_value=-1)
    self.max_k = min(max_k, len(titles))
    # The retrieve signatures take k with the maximum as its default, known only here.
    self.retrieve = _with_k(_QUERY, self.max_k, self._retrieve)
    self.retrieve_excluding = _with_k(_QUERY + [_EXCLUDE], self.max_k,
                                      self._retrieve_excluding)
    self.retrieve_with_features = _with_k(_WITH_FEATURES, self.max_k, self._retrieve)

  def _raw_features(self, query: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    # The query side takes every user feature of the release: one the request lacks gets its
    # "unknown" value.
    user_id = query[features.USER_ID]
    batch = tf.shape(user_id)
    values = {feature.name: tf.reshape(query.get(
        feature.name, tf.fill(batch, features.unknown_value(feature))), [-1])
        for feature in self.user_features}
    values[features.USER_ID] = tf.reshape(user_id, [-1])
    values[features.TIMESTAMP] = tf.reshape(query[features.TIMESTAMP], [-1])
    return values

  def _embed(self, query: Dict[str, tf.Tensor]) -> tf.Tensor:
    user_id = query[features.USER_ID]
    checks = [
        tf.debugging.assert_positive(
            tf.size(user_id), message='empty request: pass at least one user_id and timestamp'),
        tf.debugging.assert_equal(
            tf.size(user_id), tf.size(query[features.TIMESTAMP]),
            message='user_id and timestamp must have the same length (one of each per query)')]
    for feature in features.OPTIONAL_QUERY_FEATURES:
      if feature.name in query:
        checks.append(tf.debugging.assert_equal(
            tf.size(user_id), tf.size(query[feature.name]),
            message=f'{feature.name} must have one value per query (-1 or \'\' when unknown)'))
    # The towers run only after the checks: otherwise a mismatch may fail first inside them,
    # with a message about their internals.
    with tf.control_dependencies(checks):
      query = {name: tf.identity(value) for name, value in query.items()}
    return self.query_side.embed(self._raw_features(query))

  def _top_k(self, scores: tf.Tensor, k: tf.Tensor) -> Dict[str, tf.Tensor]:
    # k is a scalar (TF Serving's columnar format) or one per instance (its row format), the
    # same for the whole request: an answer is one [batch, k] tensor.
    values = tf.reshape(k, [-1])
    one_k = tf.debugging.Assert(
        tf.logical_and(tf.size(values) > 0,
                       tf.reduce_min(values) == tf.reduce_max(values)),
        ['k must be one number for the whole request (the same in every instance), not', k])
    with tf.control_dependencies([one_k]):
      k = values[0]
    # Checked before top_k runs, which would otherwise fail on its own terms (or answer an
    # empty list for k = 0).
    in_range = tf.debugging.Assert(tf.logical_and(k >= 1, k <= self.max_k), [tf.strings.format(
        f'k is {{}}: it must be between 1 and {self.max_k} (the maximum fixed at export)', k)])
    with tf.control_dependencies([in_range]):
      best = tf.math.top_k(scores, k=k)
    return {'titles': tf.gather(self.titles, best.indices), 'scores': best.values}

  def _scores(self, query: Dict[str, tf.Tensor]) -> tf.Tensor:
    return tf.matmul(self._embed(query), self.candidates, transpose_b=True)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def serving_default(self, examples):
    # A user feature is optional: an example without it parses as its unknown value.
    spec = features.raw_feature_spec([features.USER_ID, features.TIMESTAMP])
    spec.update({feature.name: tf.io.FixedLenFeature([], features.dtype(feature),
                                                     default_value=feature.unknown)
                 for feature in self.user_features})
    return {'embedding': self._embed(tf.io.parse_example(examples, spec))}

  # The user features' signatures take every optional query feature of the registry, in its
  # order (features.serving_inputs), so they are written over the list of inputs (retrieve's
  # by _with_k).
  @tf.function(input_signature=_WITH_FEATURES)
  def embed_with_features(self, *inputs):
    return {'embedding': self._embed(_named(_WITH_FEATURES, inputs))}

  @tf.function(input_signature=_QUERY)
  def embed(self, user_id, timestamp):
    return {'embedding': self._embed({features.USER_ID: user_id, features.TIMESTAMP: timestamp})}

  def _retrieve(self, query: Dict[str, tf.Tensor], k: tf.Tensor) -> Dict[str, tf.Tensor]:
    return self._top_k(self._scores(query), k)

  def _retrieve_excluding(self, query: Dict[str, tf.Tensor], k: tf.Tensor
                          ) -> Dict[str, tf.Tensor]:
    exclude = query.pop(_EXCLUDE.name)
    scores = self._scores(query)
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
    return self._top_k(scores, k)


def _named(specs: Sequence[tf.TensorSpec], values: Sequence[tf.Tensor]
           ) -> Dict[str, tf.Tensor]:
  """A signature's inputs by the names of its TensorSpecs."""
  return {spec.name: value for spec, value in zip(specs, values)}


def _with_k(specs: Sequence[tf.TensorSpec], max_k: int,
            body: Callable[[Dict[str, tf.Tensor], tf.Tensor], Dict[str, tf.Tensor]]
            ) -> tf.types.experimental.PolymorphicFunction:
  """A retrieve signature: `specs`' inputs by name, then k (int32, a scalar or one per query)
  defaulting to max_k, answered by body({input name: tensor}, k).

  TensorFlow writes a function's default argument into its SignatureDef's `defaults` (which
  TF Serving's gRPC Predict fills in for an input a request leaves out; its REST API does
  not); the default is the model's maximum, so the function's signature is written here
  rather than in a `def`.
  """
  def call(*values):
    return body(_named(specs, values[:-1]), values[-1])
  parameter = functools.partial(inspect.Parameter, kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
  call.__signature__ = inspect.Signature(
      [parameter(spec.name) for spec in specs]
      + [parameter(K, default=tf.constant(max_k, tf.int32))])
  return tf.function(call, input_signature=list(specs) + [tf.TensorSpec(None, tf.int32, name=K)])


def export(directory: str, model: QueryModel) -> None:
  """Saves the served model with its signatures, and the catalog's titles and embeddings.

  Args:
    directory: the SavedModel's directory (the Trainer's Format-Serving).
    model: the model to save; it has the user features' signatures when the release has
      user features.
  """
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
  """The catalog exported beside a served model.

  Args:
    directory: the served model's directory.

  Returns:
    (the titles, their embeddings as a [titles, dimensions] array), row for row.
  """
  extra = os.path.join(directory, EXTRA_DIR)
  with tf.io.gfile.GFile(os.path.join(extra, TITLES_FILE)) as file:
    titles = json.load(file)
  with tf.io.gfile.GFile(os.path.join(extra, EMBEDDINGS_FILE), 'rb') as file:
    embeddings = np.load(file)
  return titles, embeddings
