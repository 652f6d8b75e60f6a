"""preprocessing_fn: raw MovieLens features to the model's inputs (TFX Transform).

Query side: the user id as an index into a vocabulary learned from training (with one
index for unknown users), the timestamp as one of equal-width buckets between the data's
minimum and maximum (as the tutorial's Discretization layer does) and as a z-score, both
of the timestamp clipped to that range. The user's features, for releases that have them
(100k and 1M; the CSV releases have none): age group, gender, occupation and zip-code
prefix, each as an index into the vocabulary of its training values, with one index for a
value never seen (or missing from a request).
Candidate side: the title passes through; its vocabularies (titles with their training
frequencies, title tokens) are written for the model, which applies them, so the same
lookups serve training examples and the catalog.
"""
import tensorflow as tf
import tensorflow_transform as tft

from modules import features as f
from shared import names



def preprocessing_fn(inputs, custom_config):
  num_boundaries = int(custom_config[names.TIMESTAMP_BOUNDARIES])
  max_tokens = int(custom_config[names.MAX_TITLE_TOKENS])

  user_id = tf.reshape(inputs[f.USER_ID], [-1])
  timestamp = tf.cast(tf.reshape(inputs[f.TIMESTAMP], [-1]), tf.float64)
  title = tf.reshape(inputs[f.MOVIE_TITLE], [-1])

  first, last = tft.min(timestamp), tft.max(timestamp)
  boundaries = tf.linspace(first, last, num_boundaries)
  # At serving time a timestamp outside the training data's range counts as its nearest
  # end: the buckets clamp anyway, and the z-score then stays within what training saw.
  timestamp = tf.clip_by_value(timestamp, first, last)
  tft.vocabulary(title, vocab_filename=f.TITLE_VOCABULARY, store_frequency=True)
  tft.vocabulary(f.title_tokens(title), top_k=max_tokens,
                 vocab_filename=f.TITLE_TOKEN_VOCABULARY)
  transformed = {name: _user_feature_index(raw, inputs[raw])
                 for raw, name in f.USER_FEATURES.items() if raw in inputs}
  return {
      **transformed,
      f.USER_INDEX: tft.compute_and_apply_vocabulary(
          user_id, num_oov_buckets=1, vocab_filename=f.USER_VOCABULARY),
      f.TIMESTAMP_BUCKET: tft.apply_buckets(timestamp, tf.expand_dims(boundaries, 0)),
      f.TIMESTAMP_Z: tf.cast(tft.scale_to_z_score(timestamp), tf.float32),
      f.MOVIE_TITLE: title,
  }


def _user_feature_index(raw: str, values: tf.Tensor) -> tf.Tensor:
  """A user feature as text (numbers as integers, zip codes cut to their prefix), then its
  index in the vocabulary of training values; the last index is for unseen values."""
  values = tf.reshape(values, [-1])
  if values.dtype.is_floating:
    values = tf.cast(values, tf.int64)
  if values.dtype != tf.string:
    values = tf.strings.as_string(values)
  if raw == f.USER_ZIP_CODE:
    values = tf.strings.substr(tf.strings.upper(tf.strings.strip(values)), 0, f.ZIP_PREFIX)
  return tft.compute_and_apply_vocabulary(values, num_oov_buckets=1,
                                          vocab_filename=f.USER_FEATURES[raw])
