"""Compiles the pipeline for Kubeflow Pipelines V2 (and Vertex AI Pipelines).

    python runner_kubeflow.py --image REGISTRY/movielens-tfx:TAG --output-dir gs://BUCKET/DIR
    python runner_kubeflow.py --help       # every setting by section, with its default

Writes the pipeline built by the same create_pipeline(...) as the local runner, twice:
a PipelineJob file (JSON) for Vertex AI Pipelines and the bare pipeline spec (YAML, with
the pipeline root as its default) that Kubeflow Pipelines' client uploads. Compiling needs
no cluster and no credentials (README, "Kubeflow Pipelines").
"""
import json
import os
import sys

from shared import env

env.use_legacy_keras()  # before anything imports TensorFlow

from pipeline import configs  # noqa: E402
from shared import names  # noqa: E402


def compile_pipeline(config: configs.KubeflowConfig) -> str:
  """Writes the PipelineJob file and the Kubeflow Pipelines spec beside it.

  Args:
    config: what to compile (configs.parse_args with KubeflowConfig).

  Returns:
    The PipelineJob file's path.
  """
  from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner
  from kfp.pipeline_spec import pipeline_spec_pb2
  from pipeline.pipeline import create_pipeline

  kubeflow = config.kubeflow
  pipeline = create_pipeline(config, kubeflow.pipeline_root, kubeflow.beam_args)
  if kubeflow.trainer_cpu or kubeflow.trainer_memory_gb or kubeflow.trainer_gpus:
    resources = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec(
        cpu_limit=kubeflow.trainer_cpu, memory_limit=kubeflow.trainer_memory_gb)
    if kubeflow.trainer_gpus:
      resources.accelerator.type = kubeflow.trainer_gpu_type
      resources.accelerator.count = kubeflow.trainer_gpus
    for component in pipeline.components:  # the Tuner's trials train as the Trainer does
      if component.id in (names.TRAINER, names.TUNER):
        component.with_platform_config(resources)
  output_file = os.path.abspath(kubeflow.output_file)
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image=kubeflow.image),
      output_dir=os.path.dirname(output_file), output_filename=os.path.basename(output_file))
  runner.run(pipeline, write_out=True)
  write_kfp_spec(output_file, kubeflow.pipeline_root)
  return output_file


def kfp_spec_path(output_file: str) -> str:
  """Where the Kubeflow Pipelines spec goes beside a PipelineJob file.

  Args:
    output_file: the PipelineJob file (.json).

  Returns:
    The same path ending in .yaml.
  """
  return os.path.splitext(output_file)[0] + '.yaml'


def write_kfp_spec(job_file: str, pipeline_root: str) -> str:
  """Writes the PipelineJob's pipeline spec alone, as Kubeflow Pipelines' client reads it.

  Args:
    job_file: the compiled PipelineJob file.
    pipeline_root: the spec's default pipeline root.

  Returns:
    The spec file's path (kfp_spec_path).
  """
  import yaml
  with open(job_file) as file:
    spec = json.load(file)['pipelineSpec']
  spec['defaultPipelineRoot'] = pipeline_root
  path = kfp_spec_path(job_file)
  with open(path, 'w') as file:
    yaml.safe_dump(spec, file, sort_keys=False)
  return path


def main(argv=None) -> int:
  """Compiles the pipeline as the command line configures it.

  Args:
    argv: the flags (default: sys.argv's); `--help` lists them by section.

  Returns:
    The exit code: 0 when both files were written.
  """
  config = configs.parse_args(argv, __doc__.split('\n')[0], configs.KubeflowConfig)
  output_file = compile_pipeline(config)
  kubeflow = config.kubeflow
  print(f'Compiled {config.run.pipeline_name} for Kubeflow Pipelines V2:\n'
        f'  {output_file} (PipelineJob, for Vertex AI)\n'
        f'  {kfp_spec_path(output_file)} (pipeline spec, for Kubeflow Pipelines)\n'
        f'  image {kubeflow.image}\n  data {config.data.data_dir}\n'
        f'  pipeline root {kubeflow.pipeline_root}\n  serving {config.serving.serving_dir}')
  paths = (config.data.data_dir, kubeflow.pipeline_root, config.serving.serving_dir)
  if any(configs.PLACEHOLDER_BUCKET in path for path in paths):
    print(f'Note: some paths still name the placeholder bucket {configs.PLACEHOLDER_BUCKET}; '
          'pass --output-dir gs://your-bucket/movielens-tfx and --data-dir before submitting.',
          file=sys.stderr)
  return 0


if __name__ == '__main__':
  sys.exit(main())
