"""ValidationGate: stops the pipeline before training when ExampleValidator found anomalies.

ExampleValidator records anomalies but does not fail; this component reads them and fails
with each anomaly named (split, feature, what is wrong), so no model is trained on data
that does not match the schema. Transform runs after it.
"""
import os
from typing import List, Tuple

from tensorflow_data_validation.utils import anomalies_util
from tfx import v1 as tfx
from tfx.types import artifact_utils

ANOMALIES_FILE = 'SchemaDiff.pb'  # what ExampleValidator writes in each split's directory


class DataAnomaliesError(RuntimeError):
  """The examples do not match the schema; the message lists every anomaly."""


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
      os.path.join(uri, f'Split-{split}', ANOMALIES_FILE))
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
def ValidationGate(anomalies: tfx.dsl.components.InputArtifact[
    tfx.types.standard_artifacts.ExampleAnomalies],
                   code_version: tfx.dsl.components.Parameter[str] = '') -> None:
  """Fails, naming every anomaly, unless ExampleValidator found none.

  Args:
    anomalies: ExampleValidator's anomalies of every split.
    code_version: a fingerprint of this code, so that an edit of it checks them again.

  Raises:
    DataAnomaliesError: listing every anomaly, when there is one.
  """
  del code_version  # only part of the cache key
  found = describe_anomalies(anomalies)
  if found:
    raise DataAnomaliesError(
        f'ExampleValidator found {len(found)} anomalies in the examples; training stops here.\n'
        + '\n'.join(f'  {line}' for line in found)
        + f'\n  (details: {anomalies.uri}). Fix the data, or update the schema if the data '
        'is right.')
