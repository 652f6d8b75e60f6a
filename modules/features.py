"""The feature registry (data/features.py) as TensorFlow sees it: feature specs, the
serving inputs, the model's transformed inputs, and the one title tokenizer that
preprocessing_fn and the model share.

Every name here is declared in data/features.py; this module only derives from its table,
so that a feature added there reaches Transform, the towers and the serving signatures.
"""
from typing import Dict, Iterable, List, Optional

import tensorflow as tf

from data.features import (BUCKETIZED_USER_AGE, BY_NAME, CANDIDATE, FEATURES,  # noqa: F401
                           MOVIE_GENRES, MOVIE_ID, MOVIE_TITLE, OPTIONAL_QUERY_FEATURES, QUERY,
                           TIMESTAMP, TIMESTAMP_BUCKET, TIMESTAMP_Z, TITLE_TOKEN_VOCABULARY,
                           USER, USER_AGE_INDEX, USER_GENDER,
                           USER_GENDER_INDEX, USER_ID, USER_INDEX, USER_OCCUPATION_INDEX,
                           USER_OCCUPATION_TEXT, USER_VOCABULARY, USER_ZIP_CODE,
                           USER_ZIP_INDEX, Feature)

# Raw user feature -> its transformed index (also the name of its vocabulary): the user's
# features the query tower embeds, for releases that have them.
USER_FEATURES: Dict[str, str] = {
    feature.name: feature.rule.index for feature in FEATURES
    if feature.source == USER and feature.tower == QUERY}
# The query tower's inputs every release has.
QUERY_INPUTS = tuple(name for feature in FEATURES
                     if feature.tower == QUERY and feature.source != USER
                     for name in feature.transformed)
# Made by the Trainer, not by Transform: a title's position in the catalog lookup.
TITLE_INDEX = 'title_index'

# What Keras' TextVectorization strips by default (the tutorial's title tokenizer).
_PUNCTUATION = r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~\']'


def title_tokens(titles: tf.Tensor) -> tf.RaggedTensor:
  """Lower-cased, punctuation-free words of each title, as TextVectorization splits them."""
  return tf.strings.split(tf.strings.regex_replace(tf.strings.lower(titles), _PUNCTUATION, ''))


def dtype(feature: Feature) -> tf.dtypes.DType:
  """The TensorFlow dtype of a feature's values."""
  return tf.as_dtype(feature.dtype)


def raw_feature_spec(names: Optional[Iterable[str]] = None
                     ) -> Dict[str, tf.io.FixedLenFeature]:
  """The parsing spec of the examples ExampleGen writes.

  Args:
    names: the features to parse; None for every feature of the registry.

  Returns:
    {name: tf.io.FixedLenFeature([], dtype), or tf.io.VarLenFeature for a list}.
  """
  chosen = FEATURES if names is None else [BY_NAME[name] for name in names]
  return {feature.name: (tf.io.VarLenFeature(dtype(feature)) if feature.varlen
                         else tf.io.FixedLenFeature([], dtype(feature)))
          for feature in chosen}


def serving_inputs(with_optional: bool) -> List[tf.TensorSpec]:
  """The input signature of a serving signature that queries by raw features.

  Args:
    with_optional: also the query features a request may leave out (the user's).

  Returns:
    One TensorSpec [batch] per input, named as the feature: user_id and timestamp first,
    then the optional ones in the registry's order.
  """
  chosen = [feature for feature in FEATURES if feature.tower == QUERY and (
      with_optional or not feature.optional)]
  return [tf.TensorSpec([None], dtype(feature), name=feature.name) for feature in chosen]


def unknown_value(feature: Feature) -> tf.Tensor:
  """The value that stands for "not known" of an optional query feature."""
  return tf.constant(feature.unknown, dtype(feature))
