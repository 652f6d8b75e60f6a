"""A compiled Kubeflow V2 pipeline, read back and run task by task on this machine.

`CompiledPipeline` parses the PipelineJob file that runner_kubeflow.py writes into the
pipeline-spec protos. `LocalLauncher` runs its tasks the way Kubeflow's launcher does,
without a cluster:

- a container task: it builds the ExecutorInput (the task's parameters, its upstream tasks'
  output artifacts, fresh output URIs), substitutes it for `{{$}}` in the container's
  arguments, and runs the container's command, first its `preCacheCheck` lifecycle hook when
  it has one (ExampleGen's driver), each in its own process with this project on PYTHONPATH
  and the environment the Dockerfile sets. Its ExecutorOutput (its artifacts' properties)
  feeds the tasks downstream and is recorded in the `ArtifactStore`;
- a resolver task (the latest blessed model): it evaluates the spec's artifact queries
  (`schema_title=... AND state=LIVE AND metadata.blessed.number_value=1`, `name="{{...}}"`)
  against the artifacts earlier launches recorded, newest first, as Kubeflow's driver does
  against its metadata store.

    python -m tools.kfp_local movielens-tfx-kubeflow.json --root /tmp/kfp/run-1 \
        --store /tmp/kfp/artifacts.json

Used by the tests to prove that the compiled spec runs; useful to debug a compiled
pipeline before submitting it.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import threading
from typing import Dict, List, Optional

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2 as pb

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INVOCATION_PLACEHOLDER = '{{$}}'
# {{$.inputs.artifacts['input'].metadata['current_model_id']}} in a resolver's query.
_INPUT_METADATA = re.compile(r"\{\{\$\.inputs\.artifacts\['(\w+)'\]\.metadata\['(\w+)'\]\}\}")


def container_env(dockerfile: str = os.path.join(REPO_ROOT, 'Dockerfile')) -> Dict[str, str]:
  """The environment the image sets (the Dockerfile's ENV instructions), with the project on
  PYTHONPATH here instead of the image's copy, and TensorFlow's C++ log kept quiet."""
  with open(dockerfile) as file:
    text = file.read().replace('\\\n', ' ')
  env = {}
  for line in text.splitlines():
    if line.startswith('ENV '):
      env.update(pair.split('=', 1) for pair in line[4:].split())
  return {**env, 'PYTHONPATH': REPO_ROOT, 'TF_CPP_MIN_LOG_LEVEL': '3'}


class ArtifactStore:
  """The artifacts that earlier launches produced, oldest first, for the resolver tasks:
  what Kubeflow keeps in its metadata store. In a JSON file when given a path, so that
  separate launches of a pipeline (separate runs) share it."""

  def __init__(self, path: Optional[str] = None):
    self.path = path
    self.lock = threading.Lock()  # launches of separate runs may share the store at once
    self.artifacts: List[pb.RuntimeArtifact] = []
    if path and os.path.exists(path):
      with open(path) as file:
        self.artifacts = [json_format.ParseDict(a, pb.RuntimeArtifact()) for a in json.load(file)]

  def record(self, artifacts: List[pb.RuntimeArtifact]) -> None:
    with self.lock:
      self.artifacts.extend(artifacts)
      if self.path:
        with open(self.path, 'w') as file:
          json.dump([json_format.MessageToDict(a) for a in self.artifacts], file, indent=1)

  def latest(self, query: str) -> Optional[pb.RuntimeArtifact]:
    """The newest artifact that a resolver's filter matches (clauses joined by AND)."""
    tests = [_clause(clause) for clause in query.split(' AND ')]
    with self.lock:
      return next((a for a in reversed(self.artifacts) if all(test(a) for test in tests)),
                  None)


def _schema_title(artifact: pb.RuntimeArtifact) -> str:
  """The artifact type's title: given as such, or in its instance schema (TFX's types)."""
  if artifact.type.schema_title:
    return artifact.type.schema_title
  match = re.search(r'^title: (\S+)$', artifact.type.instance_schema, re.M)
  return match.group(1) if match else ''


def _clause(clause: str):
  """A test of one clause of a resolver's filter, as the spec's resolvers write them."""
  clause = clause.strip()
  if clause == 'state=LIVE':  # nothing here is ever deleted or abandoned
    return lambda artifact: True
  match = re.fullmatch(r'(schema_title|name)="(.*)"', clause)
  if match:
    field, value = match.groups()
    if field == 'schema_title':
      return lambda artifact: _schema_title(artifact) == value
    return lambda artifact: artifact.name == value
  match = re.fullmatch(r'metadata\.(\w+)\.number_value=([-\d.]+)', clause)
  if match:
    key, number = match.group(1), float(match.group(2))
    return lambda artifact: (key in artifact.metadata.fields
                             and artifact.metadata.fields[key].number_value == number)
  raise ValueError(f'a resolver query clause this launcher does not know: {clause!r}')


class CompiledPipeline:
  """A PipelineJob file as the pipeline-spec protos."""

  def __init__(self, path: str):
    self.path = path
    with open(path) as file:
      self.job = json.load(file)
    self.spec = json_format.ParseDict(self.job['pipelineSpec'], pb.PipelineSpec())
    self.deployment = json_format.ParseDict(
        json_format.MessageToDict(self.spec.deployment_spec), pb.PipelineDeploymentConfig())
    self.tasks = self.spec.root.dag.tasks

  def executor(self, task: str) -> Optional[pb.PipelineDeploymentConfig.ExecutorSpec]:
    component = self.spec.components[self.tasks[task].component_ref.name]
    return self.deployment.executors.get(component.executor_label)

  def container_tasks(self) -> List[str]:
    """Tasks that run in a container (not resolvers), upstream first."""
    order: List[str] = []

    def visit(name: str) -> None:
      if name not in order:
        for upstream in sorted(self.tasks[name].dependent_tasks):
          visit(upstream)
        order.append(name)

    for name in sorted(self.tasks):
      visit(name)
    return [name for name in order
            if (executor := self.executor(name)) and executor.HasField('container')]


class LocalLauncher:
  """Runs tasks of a compiled pipeline as processes, outputs under `root`."""

  def __init__(self, pipeline: CompiledPipeline, root: str,
               store: Optional[ArtifactStore] = None, python: str = sys.executable):
    # Kubeflow gives every run fresh output URIs; an earlier run's files here would be
    # read back (the entrypoint merges an existing executor_output.json, for instance).
    if os.path.isdir(root) and os.listdir(root):
      raise ValueError(f'{root} is not empty: give each run of the pipeline a new --root')
    self.pipeline = pipeline
    self.container_tasks = set(pipeline.container_tasks())
    self.root = root
    self.store = store or ArtifactStore()
    self.python = python
    self.outputs: Dict[str, Dict[str, pb.RuntimeArtifact]] = {}  # task -> key -> artifact
    self.logs: Dict[str, str] = {}
    self.commands: Dict[str, List[List[str]]] = {}  # task -> each process's command line

  def reuse(self, task_name: str, outputs: Dict[str, pb.RuntimeArtifact]) -> None:
    """Takes an earlier launch's outputs of a task, as Kubeflow does on a cache hit."""
    self.outputs[task_name] = outputs

  def resolve(self, task_name: str) -> Dict[str, pb.RuntimeArtifact]:
    """Runs a resolver task: each of its queries, its placeholders filled from its inputs,
    answered by the newest matching artifact in the store; none when nothing matches."""
    inputs = {name: self._input(task_name, spec) for name, spec in
              self.pipeline.tasks[task_name].inputs.artifacts.items()}
    resolved = {}
    for key, query in self.pipeline.executor(task_name).resolver.output_artifact_queries.items():
      missing = [name for name, _ in _INPUT_METADATA.findall(query.filter) if not inputs[name]]
      if missing:  # an upstream resolver found nothing: neither can this one
        continue
      text = _INPUT_METADATA.sub(
          lambda m: str(metadata(inputs[m.group(1)]).get(m.group(2), '')), query.filter)
      found = self.store.latest(text)
      if found is not None:
        resolved[key] = found
    self.outputs[task_name] = resolved
    return resolved

  def _input(self, task_name: str, spec) -> Optional[pb.RuntimeArtifact]:
    """The artifact an input of a task names: an upstream task's output (resolving a
    resolver on the way), or None when a resolver found nothing."""
    producer = spec.task_output_artifact
    if producer.producer_task not in self.outputs:
      if producer.producer_task in self.container_tasks:
        raise ValueError(f'{task_name} needs {producer.producer_task}\'s output '
                         f'{producer.output_artifact_key!r}: run {producer.producer_task} first')
      self.resolve(producer.producer_task)
    return self.outputs[producer.producer_task].get(producer.output_artifact_key)

  def executor_input(self, task_name: str) -> pb.ExecutorInput:
    task = self.pipeline.tasks[task_name]
    component = self.pipeline.spec.components[task.component_ref.name]
    executor_input = pb.ExecutorInput()
    for name, parameter in task.inputs.parameters.items():
      executor_input.inputs.parameters[name].CopyFrom(parameter.runtime_value.constant_value)
    for name, spec in task.inputs.artifacts.items():
      artifact = self._input(task_name, spec)
      if artifact is not None:  # an empty input: no blessed model yet
        executor_input.inputs.artifacts[name].artifacts.add().CopyFrom(artifact)
    for key, definition in component.output_definitions.artifacts.items():
      uri = os.path.join(self.root, task_name, key)
      os.makedirs(uri, exist_ok=True)  # Kubeflow's launcher prepares output directories
      # Named by its URI: unique across runs, as Kubeflow's artifact resource names are.
      executor_input.outputs.artifacts[key].artifacts.add(
          name=uri, uri=uri, type=definition.artifact_type)
    executor_input.outputs.output_file = os.path.join(self.root, task_name,
                                                      'executor_output.json')
    return executor_input

  def run(self, task_name: str) -> Dict[str, pb.RuntimeArtifact]:
    """Runs one task whose upstream tasks have run; returns its output artifacts."""
    container = self.pipeline.executor(task_name).container
    executor_input = self.executor_input(task_name)
    invocation = json_format.MessageToJson(executor_input)
    steps = [container.lifecycle.pre_cache_check] if container.HasField('lifecycle') else []
    steps.append(container)
    log, self.commands[task_name] = [], []
    for step in steps:
      command = [self.python if part == 'python' else part for part in step.command]
      args = [invocation if arg == INVOCATION_PLACEHOLDER else arg for arg in step.args]
      result = subprocess.run(command + args, capture_output=True, text=True, cwd=self.root,
                              env={**os.environ, **container_env()})
      log.append(result.stdout + result.stderr)
      self.commands[task_name].append(command + args)
      if result.returncode != 0:
        raise RuntimeError(f'task {task_name} failed ({" ".join(command)}):\n'
                           + result.stderr[-4000:])
    self.logs[task_name] = '\n'.join(log)
    output = pb.ExecutorOutput()
    with open(executor_input.outputs.output_file) as file:
      json_format.Parse(file.read(), output, ignore_unknown_fields=True)
    produced = {}
    for key, artifacts in executor_input.outputs.artifacts.items():
      artifact = pb.RuntimeArtifact()
      artifact.CopyFrom(artifacts.artifacts[0])
      if key in output.artifacts:  # the executor's view: properties it set
        artifact.metadata.CopyFrom(output.artifacts[key].artifacts[0].metadata)
      produced[key] = artifact
    self.outputs[task_name] = produced
    self.store.record(list(produced.values()))
    return produced


def metadata(artifact: pb.RuntimeArtifact) -> Dict:
  return json_format.MessageToDict(artifact.metadata) if artifact.HasField('metadata') else {}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('pipeline_file', help='a PipelineJob file from runner_kubeflow.py')
  parser.add_argument('--root', required=True, help='where the tasks write their outputs')
  parser.add_argument('--tasks', nargs='+', help='run only these tasks (upstream first)')
  parser.add_argument('--store', help='a JSON file of the artifacts earlier launches produced, '
                      'which the resolver tasks query (default: none, so no blessed model)')
  args = parser.parse_args(argv)
  pipeline = CompiledPipeline(args.pipeline_file)
  runnable = pipeline.container_tasks()
  unknown = [task for task in args.tasks or [] if task not in runnable]
  if unknown:
    parser.error(f'no container task {", ".join(unknown)}; the tasks are '
                 f'{", ".join(runnable)}')
  try:
    launcher = LocalLauncher(pipeline, os.path.abspath(args.root), ArtifactStore(args.store))
    for task in args.tasks or runnable:
      print(f'{task} ...', flush=True)
      for key, artifact in launcher.run(task).items():
        print(f'  {key}: {artifact.uri}')
  except (ValueError, RuntimeError) as error:
    print(f'error: {error}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())

