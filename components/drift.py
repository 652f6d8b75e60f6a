"""Drift and skew: TFDV's comparators of two statistics, as TFX's DistributionValidator runs them.

Two comparisons, each a DistributionValidator (TFX 1.16's component for statistics against
baseline statistics; it calls `tfdv.validate_statistics(..., previous_statistics=...)` with
the comparators set here):

  drift  this run's train split against the train split of the latest run whose data passed
         the ValidationGate (a Resolver finds it; the first run has none and is not checked)
  skew   this run's eval split against its train split

on the categorical features of the registry (data/features.py) a new release can shift:
the titles rated and the users rating (L-infinity distance of their value shares, TFDV's
comparator for categorical features), and the genres rated (Jensen-Shannon divergence: the
genres are integer ids, whose statistics are numeric, and TFDV's L-infinity distance of a
numeric feature is always 0).
"""
import os
from typing import List, Sequence

from tensorflow_data_validation.utils import anomalies_util
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.proto import distribution_validator_pb2
from tfx.types import artifact_utils

from data import features
from shared import names

CATEGORICAL = (features.MOVIE_TITLE, features.USER_ID)  # compared by L-infinity distance
NUMERIC_IDS = (features.MOVIE_GENRES,)                  # compared by Jensen-Shannon divergence
DRIFT_FEATURES = CATEGORICAL + NUMERIC_IDS
# The (statistics, baseline) split pairs of each comparison.
DRIFT_PAIRS = [(names.TRAIN_SPLIT, names.TRAIN_SPLIT)]
SKEW_PAIRS = [(names.EVAL_SPLIT, names.TRAIN_SPLIT)]
# What ExampleValidator writes in each split's directory, DistributionValidator in each pair's.
ANOMALIES_FILE = 'SchemaDiff.pb'


def comparator_config(threshold: float, feature_names: Sequence[str] = DRIFT_FEATURES
                      ) -> distribution_validator_pb2.DistributionValidatorConfig:
  """DistributionValidator's configuration: a comparator and its threshold per feature.

  Args:
    threshold: the largest distance allowed (L-infinity, or Jensen-Shannon divergence for
      the genres), between 0 and 1.
    feature_names: the features to compare, of DRIFT_FEATURES.

  Returns:
    The configuration.
  """
  config = distribution_validator_pb2.DistributionValidatorConfig()
  for name in feature_names:
    feature = config.default_slice_config.feature.add()
    feature.path.step.append(name)
    comparator = schema_pb2.FeatureComparator()
    if name in CATEGORICAL:
      comparator.infinity_norm.threshold = threshold
    else:
      comparator.jensen_shannon_divergence.threshold = threshold
    feature.distribution_comparator.CopyFrom(comparator)
  return config


def skew_features(holdout_users: int) -> List[str]:
  """The features the eval split is compared with the train split on.

  Args:
    holdout_users: the percentage of users held out of training (Data's setting).

  Returns:
    DRIFT_FEATURES, without the user id when users are held out: their ratings are all in
    eval by design, so the users' shares differ between the splits.
  """
  return [name for name in DRIFT_FEATURES
          if not (holdout_users and name == features.USER_ID)]


def describe_comparisons(artifact, baseline_run: str) -> List[str]:
  """What a DistributionValidator found beyond its thresholds.

  Args:
    artifact: its ExampleAnomalies artifact (without split pairs when it had no baseline).
    baseline_run: whose statistics it compared with, as the lines name it ('this run').

  Returns:
    One line per feature and reason: the split pair, the feature and TFDV's description
    (the measured distance, the threshold, the value that changed most).
  """
  lines = []
  for pair in artifact_utils.decode_split_names(artifact.split_names):
    found = anomalies_util.load_anomalies_binary(
        os.path.join(artifact.uri, f'SplitPair-{pair}', ANOMALIES_FILE))
    tested, baseline = pair.split('_')
    for feature, info in sorted(found.anomaly_info.items()):
      lines.extend(f'{tested} split against the {baseline} split of {baseline_run}, feature '
                   f'{feature}: {reason.description}' for reason in info.reason)
  return lines
