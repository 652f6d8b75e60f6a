"""Compiles the pipeline for Kubeflow Pipelines V2 (and Vertex AI Pipelines).

    python runner_kubeflow.py --image REGISTRY/movielens-tfx:TAG --output-dir gs://BUCKET/movielens-tfx
    python runner_kubeflow.py --help       # every setting, with its default

Writes the pipeline built by the same create_pipeline(...) as the local runner, twice:
a PipelineJob file (JSON) for Vertex AI Pipelines and the bare pipeline spec (YAML, with
the pipeline root as its default) that Kubeflow Pipelines' client uploads. Compiling needs
no cluster and no credentials (README, "Kubeflow Pipelines").
"""
import argparse
import json
import os
import sys

from shared import env

env.use_legacy_keras()  # before anything imports TensorFlow

from pipeline import configs  # noqa: E402
from shared import names  # noqa: E402

DEFAULT_IMAGE = 'movielens-tfx:latest'
DEFAULT_OUTPUT_FILE = 'movielens-tfx-kubeflow.json'
# Where a cluster run reads and writes unless told otherwise: replace the bucket.
DEFAULT_OUTPUT_DIR = 'gs://YOUR_BUCKET/movielens-tfx'
PLACEHOLDER = 'YOUR_BUCKET'
DATA_SUBDIR = 'data/ml-'


def parse_args(argv=None) -> argparse.Namespace:
  """The flags, and in `config` the PipelineConfig they make."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  kubeflow = parser.add_argument_group('Kubeflow')
  kubeflow.add_argument('--image', default=DEFAULT_IMAGE,
                        help='the container image every task runs, built from the Dockerfile '
                        '(default: %(default)s)')
  kubeflow.add_argument('--output-file', default=DEFAULT_OUTPUT_FILE,
                        help='where to write the compiled PipelineJob (default: %(default)s)')
  kubeflow.add_argument('--trainer-cpu', type=float, default=0,
                        help="the Trainer's (and Tuner's) vCPU limit (default: the "
                        "cluster's default)")
  kubeflow.add_argument('--trainer-memory-gb', type=float, default=0,
                        help="the Trainer's (and Tuner's) memory limit in GB (default: the "
                        "cluster's)")
  kubeflow.add_argument('--trainer-gpus', type=int, default=0,
                        help='GPUs for the Trainer and Tuner (with --trainer-gpu-type)')
  kubeflow.add_argument('--trainer-gpu-type', default='',
                        help='accelerator type, e.g. NVIDIA_TESLA_T4 (Vertex AI names)')
  # A cluster cannot read this machine's disk: data and outputs default to a bucket.
  configs.add_flags(parser, defaults={
      'output_dir': (DEFAULT_OUTPUT_DIR, 'the bucket directory the paths below default to'),
      'data_dir': ('', 'directory of one MovieLens release, readable by the cluster '
                   f'(default: OUTPUT_DIR/{DATA_SUBDIR}RELEASE)'),
      # Not chosen by a local directory's size: the cluster's runner is another matter.
      'beam_args': ([], "Beam pipeline arguments for every Beam-running task, as one "
                    "shell-quoted string (e.g. Dataflow's; none: the DirectRunner in memory)"),
  })
  args = parser.parse_args(argv)
  args.data_dir = args.data_dir or f'{args.output_dir.rstrip("/")}/{DATA_SUBDIR}{args.release}'
  if not args.output_file.endswith('.json'):
    parser.error(f'--output-file must end in .json (the PipelineJob); the Kubeflow '
                 f'Pipelines spec is written beside it as .yaml, not {args.output_file!r}')
  if args.trainer_gpu_type and not args.trainer_gpus:
    parser.error('--trainer-gpu-type needs --trainer-gpus N')
  try:
    args.config = configs.from_flags(args)
  except ValueError as error:
    parser.error(str(error))
  return args


def compile_pipeline(args: argparse.Namespace) -> str:
  """Writes the PipelineJob file; returns its path."""
  from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner
  from kfp.pipeline_spec import pipeline_spec_pb2
  from pipeline.pipeline import create_pipeline

  config = args.config
  pipeline = create_pipeline(config)
  if args.trainer_cpu or args.trainer_memory_gb or args.trainer_gpus:
    resources = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec(
        cpu_limit=args.trainer_cpu, memory_limit=args.trainer_memory_gb)
    if args.trainer_gpus:
      resources.accelerator.type = args.trainer_gpu_type or 'NVIDIA_TESLA_T4'
      resources.accelerator.count = args.trainer_gpus
    for component in pipeline.components:  # the Tuner's trials train as the Trainer does
      if component.id in (names.TRAINER, names.TUNER):
        component.with_platform_config(resources)
  output_file = os.path.abspath(args.output_file)
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image=args.image),
      output_dir=os.path.dirname(output_file), output_filename=os.path.basename(output_file))
  runner.run(pipeline, write_out=True)
  write_kfp_spec(output_file, config.pipeline_root)
  return output_file


def kfp_spec_path(output_file: str) -> str:
  return os.path.splitext(output_file)[0] + '.yaml'


def write_kfp_spec(job_file: str, pipeline_root: str) -> str:
  """The PipelineJob's pipeline spec alone, as Kubeflow Pipelines' client reads it."""
  import yaml
  with open(job_file) as file:
    spec = json.load(file)['pipelineSpec']
  spec['defaultPipelineRoot'] = pipeline_root
  path = kfp_spec_path(job_file)
  with open(path, 'w') as file:
    yaml.safe_dump(spec, file, sort_keys=False)
  return path


def main(argv=None) -> int:
  args = parse_args(argv)
  output_file = compile_pipeline(args)
  config = args.config
  print(f'Compiled {config.pipeline_name} for Kubeflow Pipelines V2:\n'
        f'  {output_file} (PipelineJob, for Vertex AI)\n'
        f'  {kfp_spec_path(output_file)} (pipeline spec, for Kubeflow Pipelines)\n'
        f'  image {args.image}\n  data {config.data_dir}\n'
        f'  pipeline root {config.pipeline_root}\n  serving {config.serving_dir}')
  if any(PLACEHOLDER in path for path in (config.data_dir, config.pipeline_root,
                                          config.serving_dir)):
    print(f'Note: some paths still name the placeholder bucket {PLACEHOLDER}; pass '
          '--output-dir gs://your-bucket/movielens-tfx and --data-dir before submitting.',
          file=sys.stderr)
  return 0


if __name__ == '__main__':
  sys.exit(main())
