"""preprocessing_fn: raw MovieLens features to the model's inputs (TFX Transform).

Each feature of the registry (data/features.py) that has a rule is transformed by it:
  * Vocabulary: an index into the vocabulary of its training values, with one index for a
    value never seen (or missing from a request): the user id, and the user's age group,
    gender, occupation and zip-code prefix for releases that have them (100k and 1M; the
    CSV releases have none);
  * Timeline: the timestamp as one of equal-width buckets between the data's minimum and
    maximum (as the tutorial's Discretization layer does) and as a z-score, both of the
    timestamp clipped to that range;
  * Titles: the title passes through; the vocabulary of its words is written for the
    model, which applies it, so the same lookup serves training examples and the catalog.
Nothing else is analysed: each analyser is a pass over the train split (docs/scale.md).
"""
from typing import Dict

import tensorflow as tf
import tensorflow_transform as tft

from data.features import Timeline, Titles, Vocabulary
from modules import features
from shared import names


def preprocessing_fn(inputs: Dict[str, tf.Tensor], custom_config: Dict[str, object]
                     ) -> Dict[str, tf.Tensor]:
  """The Transform graph: raw features in, the towers' inputs out.

  Args:
    inputs: the raw features of a batch, as ExampleGen writes them ([batch, 1] or
      [batch]); the user features only for releases that have them.
    custom_config: Transform's custom_config: names.TIMESTAMP_BOUNDARIES (the number of
      bucket boundaries of the timestamp) and names.MAX_TITLE_TOKENS (the size of the title
      words' vocabulary).

  Returns:
    The transformed features, by the names the registry gives them.
  """
  transformed = {}
  for feature in features.FEATURES:
    if feature.rule is None or feature.name not in inputs:
      continue
    values = tf.reshape(inputs[feature.name], [-1])
    if isinstance(feature.rule, Vocabulary):
      transformed[feature.rule.index] = _vocabulary_index(feature.rule, values)
    elif isinstance(feature.rule, Timeline):
      transformed.update(_timeline(feature.rule, values,
                                   int(custom_config[names.TIMESTAMP_BOUNDARIES])))
    elif isinstance(feature.rule, Titles):
      transformed[feature.name] = _titles(feature.rule, values,
                                          int(custom_config[names.MAX_TITLE_TOKENS]))
  return transformed


def _timeline(rule: Timeline, timestamp: tf.Tensor, num_boundaries: int
              ) -> Dict[str, tf.Tensor]:
  timestamp = tf.cast(timestamp, tf.float64)
  first, last = tft.min(timestamp), tft.max(timestamp)
  boundaries = tf.linspace(first, last, num_boundaries)
  # At serving time a timestamp outside the training data's range counts as its nearest
  # end: the buckets clamp anyway, and the z-score then stays within what training saw.
  timestamp = tf.clip_by_value(timestamp, first, last)
  return {rule.buckets: tft.apply_buckets(timestamp, tf.expand_dims(boundaries, 0)),
          rule.z_score: tf.cast(tft.scale_to_z_score(timestamp), tf.float32)}


def _titles(rule: Titles, title: tf.Tensor, max_tokens: int) -> tf.Tensor:
  tft.vocabulary(features.title_tokens(title), top_k=max_tokens,
                 vocab_filename=rule.token_vocabulary)
  return title


def _vocabulary_index(rule: Vocabulary, values: tf.Tensor) -> tf.Tensor:
  """A feature as text (numbers as integers, a prefix cut where the rule says), then its
  index in the vocabulary of training values; the last index is for unseen values."""
  if values.dtype.is_floating:
    values = tf.cast(values, tf.int64)
  if values.dtype != tf.string:
    values = tf.strings.as_string(values)
  if rule.prefix is not None:
    values = tf.strings.substr(tf.strings.upper(tf.strings.strip(values)), 0, rule.prefix)
  return tft.compute_and_apply_vocabulary(values, num_oov_buckets=1,
                                          vocab_filename=rule.file_name)
