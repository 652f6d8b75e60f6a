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

With `--image IMAGE` (`DockerLauncher`) each container task runs instead as the cluster
runs it: one `docker run --rm --network=none` of the image (built by `make image`) per
step, with the step's own command and arguments from the spec, the host paths the task
reads and writes (its outputs, its input artifacts, the data, the pipeline root, the
serving directory) mounted at the same paths, as the host's user, so that everything the
containers write is the host user's. That shows what the image holds, not what this
checkout holds: a package the Dockerfile does not copy fails the task that imports it.

    python -m tools.kfp_local movielens-tfx-kubeflow.json --root /tmp/kfp/run-1 \
        --store /tmp/kfp/artifacts.json --image movielens-tfx:latest

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
import time
import uuid
from typing import Dict, List, Optional, Tuple

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2 as pb

from shared import names

INVOCATION_PLACEHOLDER = '{{$}}'
# {{$.inputs.artifacts['input'].metadata['current_model_id']}} in a resolver's query.
_INPUT_METADATA = re.compile(r"\{\{\$\.inputs\.artifacts\['(\w+)'\]\.metadata\['(\w+)'\]\}\}")
# What Python prints between the exceptions of a chain (`raise ... from`, or raised while
# handling another).
_CHAINED = ('The above exception was the direct cause of the following exception:',
            'During handling of the above exception, another exception occurred:')
# The last line of a Python traceback: `ModuleNotFoundError: No module named 'components'`.
_EXCEPTION_LINE = re.compile(r'^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b.*)$', re.M)


def container_env(dockerfile: str = os.path.join(names.REPO_ROOT, 'Dockerfile')) -> Dict[str, str]:
  """The environment the image sets (the Dockerfile's ENV instructions), with the project on
  PYTHONPATH here instead of the image's copy, and TensorFlow's C++ log kept quiet."""
  with open(dockerfile) as file:
    text = file.read().replace('\\\n', ' ')
  env = {}
  for line in text.splitlines():
    if line.startswith('ENV '):
      env.update(pair.split('=', 1) for pair in line[4:].split())
  return {**env, 'PYTHONPATH': names.REPO_ROOT, 'TF_CPP_MIN_LOG_LEVEL': '3'}


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
    self.seconds: Dict[str, float] = {}  # task -> wall time of its processes

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

  def _execute(self, task_name: str, command: List[str], args: List[str],
               executor_input: pb.ExecutorInput) -> subprocess.CompletedProcess:
    """Runs one step of a task (its command and arguments as the spec gives them) here, in a
    process of this environment's Python with this checkout on PYTHONPATH."""
    command = [self.python if part == 'python' else part for part in command]
    return subprocess.run(command + args, capture_output=True, text=True, cwd=self.root,
                          env={**os.environ, **container_env()})

  def _failure(self, task_name: str, command: List[str], stderr: str) -> str:
    return (f'task {task_name} failed ({" ".join(command)}): {_exception(stderr)}\n'
            + stderr[-4000:])

  def run(self, task_name: str) -> Dict[str, pb.RuntimeArtifact]:
    """Runs one task whose upstream tasks have run; returns its output artifacts."""
    container = self.pipeline.executor(task_name).container
    executor_input = self.executor_input(task_name)
    invocation = json_format.MessageToJson(executor_input)
    steps = [container.lifecycle.pre_cache_check] if container.HasField('lifecycle') else []
    steps.append(container)
    log, self.commands[task_name] = [], []
    start = time.monotonic()
    for step in steps:
      args = [invocation if arg == INVOCATION_PLACEHOLDER else arg for arg in step.args]
      result = self._execute(task_name, list(step.command), args, executor_input)
      log.append(result.stdout + result.stderr)
      self.commands[task_name].append(list(step.command) + args)
      if result.returncode != 0:
        raise RuntimeError(self._failure(task_name, step.command, result.stderr))
    self.seconds[task_name] = time.monotonic() - start
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


class DockerLauncher(LocalLauncher):
  """Runs each step of a container task as one `docker run` of `image`, as Kubeflow's
  launcher runs it in the task's pod: the image's own Python, environment and copy of this
  project (nothing of this checkout), the step's command and arguments from the spec, no
  network. Kubeflow's pods see the pipeline root, the data and the serving directory at
  the URIs the spec names (a bucket); here those are host directories, mounted at the same
  paths: the launch's root, the pipeline root and the serving directory writable, the data
  and other launches' artifacts (a resolved or reused input) read-only. The containers run
  as this process's uid:gid, so their files are this user's on the host."""

  def __init__(self, pipeline: CompiledPipeline, root: str, image: str,
               store: Optional[ArtifactStore] = None, docker: str = 'docker',
               docker_args: Tuple[str, ...] = ()):
    super().__init__(pipeline, root, store)
    self.image = image
    self.docker = docker
    self.docker_args = list(docker_args)  # extra `docker run` options (the tests' use)
    self.docker_commands: Dict[str, List[List[str]]] = {}  # task -> each `docker run` line

  def mounts(self, task_name: str, executor_input: pb.ExecutorInput) -> List[Tuple[str, bool]]:
    """(host path, writable) of every directory a task's step may touch, outermost only."""
    paths = [(self.root, True)]
    root = self.pipeline.job.get('runtimeConfig', {}).get('gcsOutputDirectory', '')
    paths.append((root, True))
    for name, parameter in self.pipeline.tasks[task_name].inputs.parameters.items():
      value = parameter.runtime_value.constant_value.string_value
      if name == 'input_base':  # ExampleGen's: the MovieLens release
        paths.append((value, False))
      elif name == 'push_destination':  # the Pusher's: the serving directory
        destination = json.loads(value).get('filesystem', {}).get('base_directory', '')
        paths.append((destination, True))
    for artifacts in executor_input.inputs.artifacts.values():
      paths.extend((artifact.uri, False) for artifact in artifacts.artifacts)
    chosen: List[Tuple[str, bool]] = []
    # Local absolute paths only (a gs:// root is the cluster's business), outermost first:
    # a path under a mounted directory is already there, with that directory's access.
    for path, writable in sorted({(os.path.normpath(p), w) for p, w in paths
                                  if p.startswith('/')}, key=lambda pw: (len(pw[0]), not pw[1])):
      if any(path == c or path.startswith(c.rstrip('/') + '/') for c, _ in chosen):
        continue
      if writable:
        os.makedirs(path, exist_ok=True)  # made as this user, not by docker as root
      elif not os.path.exists(path):
        raise ValueError(f'task {task_name} reads {path}, which does not exist on this host')
      chosen.append((path, writable))
    return chosen

  def _execute(self, task_name: str, command: List[str], args: List[str],
               executor_input: pb.ExecutorInput) -> subprocess.CompletedProcess:
    # Unique across launchers: two launches may run the same task at once.
    name = f'kfp-local-{task_name}-{uuid.uuid4().hex[:12]}'
    line = [self.docker, 'run', '--rm', '--network=none', '--name', name,
            '--user', f'{os.getuid()}:{os.getgid()}']
    if os.getuid() != 0:  # a uid the image has no account for: no home directory either
      line += ['--env', 'HOME=/tmp']
    for path, writable in self.mounts(task_name, executor_input):
      line += ['--mount', f'type=bind,source={path},target={path}'
               + ('' if writable else ',readonly')]
    # The image's entrypoint gives way to the step's command, as in a Kubeflow pod.
    line += [*self.docker_args, '--entrypoint', command[0], self.image, *command[1:], *args]
    self.docker_commands.setdefault(task_name, []).append(line)
    try:
      return subprocess.run(line, capture_output=True, text=True)
    except BaseException:  # interrupted: the container would run on without its client
      subprocess.run([self.docker, 'rm', '--force', name], capture_output=True)
      raise

  def _failure(self, task_name: str, command: List[str], stderr: str) -> str:
    return (f'task {task_name} failed in image {self.image} ({" ".join(command)}): '
            f'{_exception(stderr)}\n' + stderr[-4000:])


def _exception(stderr: str) -> str:
  """What went wrong, first in a failure's message: the last exception of a step's stderr
  and, when it was raised from another (TFX's entrypoint turns a ModuleNotFoundError into
  `ImportError: Could not import ...`), the first exception of that chain, which names the
  module."""
  found = list(_EXCEPTION_LINE.finditer(stderr))
  if not found:
    return 'exit status not 0, no Python exception (its stderr below)'
  first = len(found) - 1
  while first > 0 and stderr[found[first - 1].end():].lstrip().startswith(_CHAINED):
    first -= 1
  last, cause = found[-1].group(1), found[first].group(1)
  return last if cause == last else f'{cause} (raised as {last})'


def metadata(artifact: pb.RuntimeArtifact) -> Dict:
  return json_format.MessageToDict(artifact.metadata) if artifact.HasField('metadata') else {}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('pipeline_file', help='a PipelineJob file from runner_kubeflow.py')
  parser.add_argument('--root', required=True, help='where the tasks write their outputs')
  parser.add_argument('--tasks', nargs='+', help='run only these tasks (upstream first)')
  parser.add_argument('--store', help='a JSON file of the artifacts earlier launches produced, '
                      'which the resolver tasks query (default: none, so no blessed model)')
  parser.add_argument('--image', help='run each task in a container of this image (docker '
                      'run, no network; `make image` builds it) instead of in this '
                      "environment; 'spec' for the image the spec names")
  args = parser.parse_args(argv)
  pipeline = CompiledPipeline(args.pipeline_file)
  runnable = pipeline.container_tasks()
  unknown = [task for task in args.tasks or [] if task not in runnable]
  if unknown:
    parser.error(f'no container task {", ".join(unknown)}; the tasks are '
                 f'{", ".join(runnable)}')
  root, store = os.path.abspath(args.root), ArtifactStore(args.store)
  start = time.monotonic()
  try:
    if args.image:
      image = (pipeline.executor(runnable[0]).container.image if args.image == 'spec'
               else args.image)
      launcher = DockerLauncher(pipeline, root, image, store)
    else:
      launcher = LocalLauncher(pipeline, root, store)
    for task in args.tasks or runnable:
      print(f'{task} ...', flush=True)
      for key, artifact in launcher.run(task).items():
        print(f'  {key}: {artifact.uri}')
      print(f'  ({launcher.seconds[task]:.1f} s)', flush=True)
  except (ValueError, RuntimeError) as error:
    print(f'error: {error}', file=sys.stderr)
    return 1
  where = f'in containers of {launcher.image}' if args.image else 'in this environment'
  print(f'{len(launcher.seconds)} tasks ran {where} in {time.monotonic() - start:.0f} s')
  return 0


if __name__ == '__main__':
  sys.exit(main())

