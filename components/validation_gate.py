"""ValidationGate: stops the pipeline before training on anomalies, drift or skew.

ExampleValidator and the DistributionValidators (components/drift.py) record what they find
but do not fail; this component reads it and fails with each finding named (split, feature,
what is wrong), so no model is trained on data that does not match the schema, or that
drifted from the last validated run's beyond the thresholds. Transform runs after it.

Drift and skew can be accepted (--accept-drift): the gate then passes and records what it
accepted on its output. Its output, a copy of this run's statistics, is what the next run's
drift is measured against: a run the gate stopped never becomes the baseline.
"""
import logging
import os
from typing import List, Tuple

from tensorflow_data_validation.utils import anomalies_util
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components import drift
from shared import names

logger = logging.getLogger(f'{names.LOGGER}.validation_gate')

VALIDATED_STATISTICS_KEY = 'validated_statistics'  # the gate's output (its parameter's name)


class DataAnomaliesError(RuntimeError):
  """The examples do not match the schema; the message lists every anomaly."""


class DataDriftError(RuntimeError):
  """The statistics drifted, or eval is skewed from train, beyond the thresholds; the
  message lists every feature with its measured distance."""


def split_anomalies(uri: str, split: str) -> List[Tuple[str, str, str]]:
  """The anomalies ExampleValidator found in a split.

  Args:
    uri: the ExampleAnomalies artifact's directory.
    split: the split's name.

  Returns:
    (feature, short description, description) of each anomaly; a dataset-level anomaly
    (the number of examples, say) has feature ''.
  """
  found = anomalies_util.load_anomalies_binary(
      os.path.join(uri, f'Split-{split}', drift.ANOMALIES_FILE))
  rows = [(feature, info.short_description, info.description)
          for feature, info in sorted(found.anomaly_info.items())]
  if found.HasField('dataset_anomaly_info'):
    info = found.dataset_anomaly_info
    rows.append(('', info.short_description, info.description))
  return rows


def describe_anomalies(artifact) -> List[str]:
  """The anomalies of every split of an ExampleAnomalies artifact.

  Args:
    artifact: the ExampleAnomalies artifact.

  Returns:
    One line per anomaly: split, feature and description.
  """
  return [f'{split} split{f", feature {feature}" if feature else ""}: {short}: {description}'
          for split in artifact_utils.decode_split_names(artifact.split_names)
          for feature, short, description in split_anomalies(artifact.uri, split)]


@tfx.dsl.components.component
def ValidationGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    drift_anomalies: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleAnomalies],
    skew_anomalies: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleAnomalies],
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    validated_statistics: tfx.dsl.components.OutputArtifact[
        tfx.types.standard_artifacts.ExampleStatistics],
    accept_drift: tfx.dsl.components.Parameter[bool],
    code_version: tfx.dsl.components.Parameter[str] = '') -> None:
  """Fails, naming every finding, unless the examples match the schema and neither drifted
  nor are skewed beyond the thresholds (or the drift is accepted).

  Args:
    anomalies: ExampleValidator's anomalies of every split.
    drift_anomalies: the drift DistributionValidator's findings (none on a first run).
    skew_anomalies: the skew DistributionValidator's findings.
    statistics: this run's statistics.
    validated_statistics: a copy of them, the next run's baseline, written when the gate
      passes; its custom property ACCEPTED_DRIFT lists the drift it accepted ('' for none).
    accept_drift: pass despite drift or skew (recorded on the output), or stop on it.
    code_version: a fingerprint of this code, so that an edit of it checks them again.

  Raises:
    DataAnomaliesError: listing every anomaly, when there is one.
    DataDriftError: listing every feature beyond its threshold, unless accept_drift.
  """
  del code_version  # only part of the cache key
  found = describe_anomalies(anomalies)
  if found:
    raise DataAnomaliesError(
        f'ExampleValidator found {len(found)} anomalies in the examples; training stops here.\n'
        + '\n'.join(f'  {line}' for line in found)
        + f'\n  (details: {anomalies.uri}). Fix the data, or update the schema if the data '
        'is right.')
  shifted = (drift.describe_comparisons(drift_anomalies, 'the latest validated run')
             + drift.describe_comparisons(skew_anomalies, 'this run'))
  if shifted and not accept_drift:
    raise DataDriftError(
        f'The data drifted beyond the thresholds ({len(shifted)} findings); training stops '
        'here.\n' + '\n'.join(f'  {line}' for line in shifted)
        + f'\n  (details: {drift_anomalies.uri}, {skew_anomalies.uri}). If the new data is '
        'right, run again with --accept-drift (the run records what it accepted), or raise '
        '--max-drift / --max-skew.')
  for line in shifted:
    logger.warning('Accepted (--accept-drift): %s', line)
  io_utils.copy_dir(statistics.uri, validated_statistics.uri)
  validated_statistics.split_names = statistics.split_names
  validated_statistics.set_string_custom_property(names.ACCEPTED_DRIFT, '\n'.join(shifted))
