"""Reading ML Metadata: the runs of a pipeline and the artifacts each component produced.

In the pipeline layer because the local runner reads it too (what a run produced, which
artifacts to check); the inspector builds its questions on it."""
import dataclasses
import os
from typing import Dict, List, Optional

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
  id: int = 0  # the artifact's id in ML Metadata


def connect(metadata_path: str, writable: bool = False) -> metadata_store.MetadataStore:
  """A store over a local SQLite ML Metadata file, which must exist; read-only unless
  `writable`."""
  if not os.path.exists(metadata_path):
    raise FileNotFoundError(f'no ML Metadata at {metadata_path}: has the pipeline run?')
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  modes = metadata_store_pb2.SqliteMetadataSourceConfig
  config.sqlite.connection_mode = modes.READWRITE if writable else modes.READONLY
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
  return [output for execution in run_executions(store, pipeline_name, run)
          for output in execution_outputs(store, execution)]


@dataclasses.dataclass
class Execution:
  id: int
  component: str
  state: str  # COMPLETE, CACHED, FAILED, RUNNING, ...
  started: float  # seconds since the epoch
  finished: float
  properties: Dict[str, object]  # the component's settings (TFX's exec properties)


def _component(store: metadata_store.MetadataStore, pipeline_name: str,
               execution: metadata_store_pb2.Execution) -> str:
  nodes = [c.name for c in store.get_contexts_by_execution(execution.id) if c.type == 'node']
  return nodes[0][len(pipeline_name) + 1:] if nodes else execution.type


def _execution(store, pipeline_name, execution: metadata_store_pb2.Execution) -> Execution:
  return Execution(
      id=execution.id, component=_component(store, pipeline_name, execution),
      state=_STATES.get(execution.last_known_state, 'UNKNOWN'),
      started=execution.create_time_since_epoch / 1000,
      finished=execution.last_update_time_since_epoch / 1000,
      properties={k: _value(v) for k, v in execution.custom_properties.items()})


def run_executions(store: metadata_store.MetadataStore, pipeline_name: str,
                   run: metadata_store_pb2.Context) -> List[Execution]:
  """A run's executions in the order they started."""
  return [_execution(store, pipeline_name, e)
          for e in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id)]


def components(store: metadata_store.MetadataStore, pipeline_name: str) -> List[str]:
  """Every component of the pipeline that ever ran, in the order of their first run."""
  prefix = pipeline_name + '.'
  nodes = [c for c in store.get_contexts_by_type('node') if c.name.startswith(prefix)]
  return [c.name[len(prefix):] for c in sorted(nodes, key=lambda c: c.id)]


@dataclasses.dataclass
class Link:
  """An execution's input: the artifact and the execution that produced it."""
  key: str
  artifact: Output
  producer: Optional[Execution]


def producer_of(store: metadata_store.MetadataStore, pipeline_name: str,
                artifact_id: int) -> Optional[Execution]:
  """The execution that made an artifact (a cached execution reusing it came later)."""
  events = [e for e in store.get_events_by_artifact_ids([artifact_id])
            if e.type == metadata_store_pb2.Event.OUTPUT]
  if not events:
    return None
  [execution] = store.get_executions_by_id([min(e.execution_id for e in events)])
  return _execution(store, pipeline_name, execution)


def _events(store: metadata_store.MetadataStore, execution: Execution, kind: int):
  """(event, artifact) of each input or output event (`kind`) of an execution, and the
  artifact type names by id."""
  events = [e for e in store.get_events_by_execution_ids([execution.id]) if e.type == kind]
  artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
  types = {t.id: t.name for t in store.get_artifact_types()}
  return [(e, artifacts[e.artifact_id]) for e in events], types


def inputs_of(store: metadata_store.MetadataStore, pipeline_name: str,
              execution: Execution) -> List[Link]:
  links = []
  events, types = _events(store, execution, metadata_store_pb2.Event.INPUT)
  for event, artifact in events:
    producer = producer_of(store, pipeline_name, artifact.id)
    links.append(Link(_key(event), _output(artifact, types,
                                           producer.component if producer else '?',
                                           _key(event), producer.state if producer else ''),
                      producer))
  return links


def execution_outputs(store: metadata_store.MetadataStore,
                      execution: Execution) -> List[Output]:
  events, types = _events(store, execution, metadata_store_pb2.Event.OUTPUT)
  return [_output(artifact, types, execution.component, _key(event), execution.state)
          for event, artifact in events]


def _key(event: metadata_store_pb2.Event) -> str:
  """The input or output name an event records, e.g. 'examples'."""
  return event.path.steps[0].key if event.path.steps else ''


def _output(artifact: metadata_store_pb2.Artifact, types: Dict[int, str], component: str,
            key: str, state: str) -> Output:
  return Output(
      component=component, key=key, type=types.get(artifact.type_id, artifact.type),
      uri=artifact.uri, state=state,
      properties={**{k: _value(v) for k, v in artifact.properties.items()},
                  **{k: _value(v) for k, v in artifact.custom_properties.items()}},
      id=artifact.id)
