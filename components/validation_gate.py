"""ValidationGate: stops the pipeline before training when ExampleValidator found anomalies.

ExampleValidator records anomalies but does not fail; this component reads them and fails
with each anomaly named (split, feature, what is wrong), so no model is trained on data
that does not match the schema. Transform runs after it.
"""
import os
from typing import List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

ANOMALIES_FILE = 'SchemaDiff.pb'  # what ExampleValidator writes in each split's directory


class DataAnomaliesError(RuntimeError):
  """The examples do not match the schema; the message lists every anomaly."""


def describe_anomalies(artifact) -> List[str]:
  """One line per anomaly of an ExampleAnomalies artifact: split, feature and description."""
  lines = []
  for split in artifact_utils.decode_split_names(artifact.split_names):
    path = os.path.join(artifact_utils.get_split_uri([artifact], split), ANOMALIES_FILE)
    anomalies = anomalies_pb2.Anomalies()
    with fileio.open(path, 'rb') as file:
      anomalies.ParseFromString(file.read())
    for feature, info in sorted(anomalies.anomaly_info.items()):
      lines.append(f'{split} split, feature {feature}: {info.short_description}: '
                   f'{info.description}')
    if anomalies.HasField('dataset_anomaly_info'):
      info = anomalies.dataset_anomaly_info
      lines.append(f'{split} split: {info.short_description}: {info.description}')
  return lines


@tfx.dsl.components.component
def ValidationGate(anomalies: tfx.dsl.components.InputArtifact[
    tfx.types.standard_artifacts.ExampleAnomalies],
                   code_version: tfx.dsl.components.Parameter[str] = '') -> None:
  """Fails, naming every anomaly, unless ExampleValidator found none. `code_version`, a
  fingerprint of this code, makes an edit of it check the anomalies again."""
  del code_version  # only part of the cache key
  found = describe_anomalies(anomalies)
  if found:
    raise DataAnomaliesError(
        f'ExampleValidator found {len(found)} anomalies in the examples; training stops here.\n'
        + '\n'.join(f'  {line}' for line in found)
        + f'\n  (details: {anomalies.uri}). Fix the data, or update the schema if the data '
        'is right.')
