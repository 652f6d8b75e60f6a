"""A compiled Kubeflow V2 pipeline, read back and run task by task on this machine.

`CompiledPipeline` parses the PipelineJob file that runner_kubeflow.py writes into the
pipeline-spec protos. `LocalLauncher` runs its container tasks the way Kubeflow's launcher
does, without a cluster: for each task it builds the ExecutorInput (the task's parameters,
its upstream tasks' output artifacts, fresh output URIs), substitutes it for `{{$}}` in the
container's arguments, and runs the container's command, first its `preCacheCheck`
lifecycle hook when it has one (ExampleGen's driver), each in its own process with this
project on PYTHONPATH and the environment the Dockerfile sets. Each task's ExecutorOutput
(its artifacts' properties) then feeds the tasks downstream.

    python -m pipeline.compiled movielens-tfx-kubeflow.json --root /tmp/kfp-local

Used by the tests to prove that the compiled spec runs; useful to debug a compiled
pipeline before submitting it.
"""
import argparse
import json
import os
import subprocess
import sys
from typing import Dict, List, Optional

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2 as pb

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INVOCATION_PLACEHOLDER = '{{$}}'
# The Dockerfile's environment, and TensorFlow's C++ log kept quiet.
CONTAINER_ENV = {'TF_USE_LEGACY_KERAS': '1', 'TF_CPP_MIN_LOG_LEVEL': '3'}


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

  def __init__(self, pipeline: CompiledPipeline, root: str, python: str = sys.executable):
    # Kubeflow gives every run fresh output URIs; an earlier run's files here would be
    # read back (the entrypoint merges an existing executor_output.json, for instance).
    if os.path.isdir(root) and os.listdir(root):
      raise ValueError(f'{root} is not empty: give each run of the pipeline a new --root')
    self.pipeline = pipeline
    self.container_tasks = set(pipeline.container_tasks())
    self.root = root
    self.python = python
    self.outputs: Dict[str, Dict[str, pb.RuntimeArtifact]] = {}  # task -> key -> artifact
    self.logs: Dict[str, str] = {}
    self.commands: Dict[str, List[List[str]]] = {}  # task -> each process's command line

  def executor_input(self, task_name: str) -> pb.ExecutorInput:
    task = self.pipeline.tasks[task_name]
    component = self.pipeline.spec.components[task.component_ref.name]
    executor_input = pb.ExecutorInput()
    for name, parameter in task.inputs.parameters.items():
      executor_input.inputs.parameters[name].CopyFrom(parameter.runtime_value.constant_value)
    for name, artifact in task.inputs.artifacts.items():
      producer = artifact.task_output_artifact
      if producer.producer_task in self.outputs:
        executor_input.inputs.artifacts[name].artifacts.add().CopyFrom(
            self.outputs[producer.producer_task][producer.output_artifact_key])
      elif producer.producer_task in self.container_tasks:
        raise ValueError(f'{task_name} needs {producer.producer_task}\'s output '
                         f'{producer.output_artifact_key!r}: run {producer.producer_task} first')
      # A resolver's output (the latest blessed model) stays empty: there is no history.
    for key, definition in component.output_definitions.artifacts.items():
      uri = os.path.join(self.root, task_name, key)
      os.makedirs(uri, exist_ok=True)  # Kubeflow's launcher prepares output directories
      executor_input.outputs.artifacts[key].artifacts.add(
          name=f'{task_name}.{key}', uri=uri, type=definition.artifact_type)
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
                              env={**os.environ, **CONTAINER_ENV, 'PYTHONPATH': REPO_ROOT})
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
    return produced


def metadata(artifact: pb.RuntimeArtifact) -> Dict:
  return json_format.MessageToDict(artifact.metadata) if artifact.HasField('metadata') else {}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('pipeline_file', help='a PipelineJob file from runner_kubeflow.py')
  parser.add_argument('--root', required=True, help='where the tasks write their outputs')
  parser.add_argument('--tasks', nargs='+', help='run only these tasks (upstream first)')
  args = parser.parse_args(argv)
  pipeline = CompiledPipeline(args.pipeline_file)
  runnable = pipeline.container_tasks()
  unknown = [task for task in args.tasks or [] if task not in runnable]
  if unknown:
    parser.error(f'no container task {", ".join(unknown)}; the tasks are '
                 f'{", ".join(runnable)}')
  try:
    launcher = LocalLauncher(pipeline, os.path.abspath(args.root))
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

