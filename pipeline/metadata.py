"""Reading ML Metadata: the runs of a pipeline and the artifacts each component produced."""
import dataclasses
import os
from typing import Dict, List

from google.protobuf import json_format
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

_STATES = {value: name for name, value in metadata_store_pb2.Execution.State.items()}


@dataclasses.dataclass
class Output:
  component: str
  key: str
  type: str
  uri: str
  state: str  # of the execution that produced it here: COMPLETE, CACHED, ...
  properties: Dict[str, object]


def connect(metadata_path: str) -> metadata_store.MetadataStore:
  """A read-only store over a local SQLite ML Metadata file, which must exist."""
  if not os.path.exists(metadata_path):
    raise FileNotFoundError(f'no ML Metadata at {metadata_path}: has the pipeline run?')
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
  return metadata_store.MetadataStore(config)


def _value(value: metadata_store_pb2.Value):
  kind = value.WhichOneof('value')
  if kind == 'struct_value':
    return json_format.MessageToDict(value.struct_value)
  return getattr(value, kind) if kind else None


def runs(store: metadata_store.MetadataStore, pipeline_name: str) -> List[
    metadata_store_pb2.Context]:
  """The pipeline's run contexts, oldest first."""
  pipeline = store.get_context_by_type_and_name('pipeline', pipeline_name)
  if pipeline is None:
    return []
  children = store.get_children_contexts_by_context(pipeline.id)
  return sorted((c for c in children if c.type == 'pipeline_run'),
                key=lambda c: c.create_time_since_epoch)


def run_outputs(store: metadata_store.MetadataStore, pipeline_name: str,
                run: metadata_store_pb2.Context) -> List[Output]:
  """Every output artifact of each execution of a run, in execution order."""
  outputs = []
  executions = sorted(store.get_executions_by_context(run.id), key=lambda e: e.id)
  events = store.get_events_by_execution_ids([e.id for e in executions])
  artifacts = {a.id: a for a in store.get_artifacts_by_id(
      list({e.artifact_id for e in events}))}
  artifact_types = {t.id: t.name for t in store.get_artifact_types()}
  for execution in executions:
    nodes = [c.name for c in store.get_contexts_by_execution(execution.id) if c.type == 'node']
    component = nodes[0][len(pipeline_name) + 1:] if nodes else execution.type
    for event in events:
      if event.execution_id != execution.id or event.type != metadata_store_pb2.Event.OUTPUT:
        continue
      artifact = artifacts[event.artifact_id]
      outputs.append(Output(
          component=component, key=event.path.steps[0].key,
          type=artifact_types.get(artifact.type_id, artifact.type), uri=artifact.uri,
          state=_STATES.get(execution.last_known_state, 'UNKNOWN'),
          properties={**{k: _value(v) for k, v in artifact.properties.items()},
                      **{k: _value(v) for k, v in artifact.custom_properties.items()}}))
  return outputs
