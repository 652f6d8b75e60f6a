"""The pipeline's configuration, in sections: each setting has one default, each a flag.

Each section is what one part of the pipeline receives (pipeline/pipeline.py passes it):

  Run        the pipeline's name and TFX caching (every runner)
  Data       MovieLensExampleGen: which release, its layout, the split
  Statistics StatisticsGen: how much of the examples TFDV reads (its own sampling)
  Transform  Transform's custom_config (modules/preprocessing.py)
  Training   modules/hparams.py's TrainingConfig: the Trainer's (and the Tuner's first)
             settings, from a preset whose values are the only training defaults
  Tuning     whether a Tuner runs, and its custom_config (modules/tuner.py)
  Gate       the RetrievalEvaluator's blessing
  Serving    the Trainer's served model and the Pusher's directory
  Local      where and how runner_local.py runs: paths, Beam's mode, --until
  Kubeflow   what runner_kubeflow.py compiles: the image, paths in a bucket, resources

`parse_args` reads runner_local.py's command line into a LocalConfig, or runner_kubeflow.py's
into a KubeflowConfig; docs/configuration.md is written from the same flags
(python -m tools.config_doc).
"""
import argparse
import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

from data import fetch
from modules import hparams
from pipeline import flags
from pipeline.flags import setting
from shared import names

DEFAULT_OUTPUT_DIR = os.path.join(names.REPO_ROOT, 'outputs')
# No Beam arguments: Beam's own default, the DirectRunner in memory with one worker, the
# fastest mode on 2 cores at 100k and 1M ratings (bench/scale.py, bench/beam_direct_runner.py;
# docs/scale.md). Given any Beam argument, TFX also builds an sdist of itself for every Beam
# component (about 2 s each), which only remote workers need.
DEFAULT_BEAM_ARGS = ()
# From this much local data on, one worker process per core: at 10M ratings (253 MB)
# multi_processing ran ExampleGen through Transform in half in_memory's time, at 1M (25 MB)
# it was 1.28x slower (docs/scale.md). The threshold lies between; not measured closer.
MULTI_PROCESSING_MIN_BYTES = 100 * 2**20
KUBEFLOW_DATA_SUBDIR = 'data/ml-'
# The placeholder of Kubeflow's default output directory: compiling with it prints a note.
PLACEHOLDER_BUCKET = 'YOUR_BUCKET'
DEFAULT_GPU_TYPE = 'NVIDIA_TESLA_T4'


def data_bytes(data_dir: str) -> int:
  """The size of the files under a local data directory (0 for a URI or a missing one)."""
  if '://' in data_dir or not os.path.isdir(data_dir):
    return 0
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, files in os.walk(data_dir) for name in files)


def local_beam_args(data_dir: str) -> List[str]:
  """The local run's Beam arguments when none are given: the DirectRunner in memory, or with
  a worker process per core for data of MULTI_PROCESSING_MIN_BYTES and more.

  Args:
    data_dir: the release's directory.

  Returns:
    Beam pipeline arguments.
  """
  cores = os.cpu_count() or 1
  if cores < 2 or data_bytes(data_dir) < MULTI_PROCESSING_MIN_BYTES:
    return list(DEFAULT_BEAM_ARGS)
  return ['--direct_running_mode=multi_processing', f'--direct_num_workers={cores}']


def _absolute(path: str) -> str:
  """A local path made absolute; URIs such as gs://bucket/x and '' are kept as they are."""
  if not path or '://' in path:
    return path
  return os.path.abspath(os.path.expanduser(path))


def _under(output_dir: str, path: str, name: str) -> str:
  """`path` made absolute, or when empty `name` under the output directory."""
  return _absolute(path) or f'{output_dir.rstrip("/")}/{name}'


@dataclasses.dataclass
class Run:
  """The run, as every runner records it."""
  pipeline_name: str = setting(names.PIPELINE_NAME, 'name of the pipeline in ML Metadata')
  cache: bool = setting(True, "reuse a component's earlier outputs when its inputs and "
                        'settings are unchanged (TFX caching)')


@dataclasses.dataclass
class Data:
  """What MovieLensExampleGen reads, and how it splits the ratings."""
  release: str = setting(fetch.DEFAULT_RELEASE, 'the MovieLens release to read, as `python -m '
                         'data.fetch --release RELEASE` stores it: '
                         + ', '.join(fetch.RELEASES))
  data_dir: str = setting('', 'directory of one MovieLens release in any layout (100k, 1M, '
                          'CSV); overrides --release', shown='data/movielens/ml-RELEASE; on '
                          'Kubeflow OUTPUT_DIR/data/ml-RELEASE')
  layout: str = setting('auto', "data layout, or 'auto' to detect it from the file names")
  eval_percent: int = setting(20, 'percentage of ratings in the eval split (stable hash)')
  holdout_users: int = setting(0, 'percentage of users held out of training entirely (a '
                               'stable hash of the id; all their ratings in eval), for the '
                               "Evaluator's cold-start figures")
  max_bad_rows: int = setting(0, 'unusable input rows that may be skipped (and reported) '
                              'before the run fails')

  def __post_init__(self):
    if self.release not in fetch.RELEASES:
      raise ValueError(f'--release must be one of {", ".join(fetch.RELEASES)}, '
                       f'not {self.release!r}')
    if not 0 < self.eval_percent < 100:
      raise ValueError(f'--eval-percent must be between 1 and 99, not {self.eval_percent}')
    if not 0 <= self.holdout_users < 100:
      raise ValueError(f'--holdout-users must be between 0 and 99, not {self.holdout_users}')
    if self.max_bad_rows < 0:
      raise ValueError(f'--max-bad-rows cannot be negative ({self.max_bad_rows})')
    self.data_dir = _absolute(self.data_dir)


@dataclasses.dataclass
class Statistics:
  """StatisticsGen: how much of the examples TFDV describes (SchemaGen and ExampleValidator
  read its statistics)."""
  statistics_sample_mb: float = setting(
      64.0, "above this many MB of release files, StatisticsGen reads a random sample of the "
      "examples of about this many MB' worth (TFDV's StatsOptions sample_rate); 0: all of them")

  def __post_init__(self):
    if self.statistics_sample_mb < 0:
      raise ValueError(f'--statistics-sample-mb cannot be negative ({self.statistics_sample_mb})')

  def sample_rate(self, release_bytes: int) -> float:
    """The share of the examples StatisticsGen reads.

    Args:
      release_bytes: the size of the release's files (`data_bytes`; 0 when unknown, as for a
        bucket's).

    Returns:
      1.0 (all) up to statistics_sample_mb of files, or when sampling is off or the size
      unknown; otherwise statistics_sample_mb's share of them.
    """
    limit = self.statistics_sample_mb * 2**20
    if not limit or release_bytes <= limit:
      return 1.0
    return limit / release_bytes


@dataclasses.dataclass
class Transform:
  """Transform's custom_config, which modules/preprocessing.py reads."""
  timestamp_boundaries: int = setting(1000, 'equal-width timestamp bucket boundaries')
  max_title_tokens: int = setting(10_000, 'size of the title-word vocabulary')

  def custom_config(self) -> Dict[str, int]:
    return {names.TIMESTAMP_BOUNDARIES: self.timestamp_boundaries,
            names.MAX_TITLE_TOKENS: self.max_title_tokens}


@dataclasses.dataclass
class Tuning:
  """Whether a Tuner searches the training settings, and its custom_config (modules/tuner.py)."""
  tune: bool = setting(False, 'search the training settings with a Tuner (KerasTuner) on the '
                       'train split before the Trainer, which then uses the best it found')
  trials: int = setting(10, 'trials the Tuner may run (each a training run)', flag='tune-trials')
  validation_percent: int = setting(
      10, "percentage of the train split held out of each trial's training to score it on "
      '(a seeded sample; the eval split is left to the Evaluator)',
      flag='tune-validation-percent')

  def __post_init__(self):
    if self.trials < 1:
      raise ValueError(f'--tune-trials must be at least 1, not {self.trials}')
    if not 0 < self.validation_percent < 100:
      raise ValueError(f'--tune-validation-percent must be between 1 and 99, not '
                       f'{self.validation_percent}')

  def custom_config(self) -> Dict[str, int]:
    return {names.TUNE_TRIALS: self.trials,
            names.TUNE_VALIDATION_PERCENT: self.validation_percent}


@dataclasses.dataclass
class Gate:
  """When the RetrievalEvaluator blesses a model (which the Pusher then serves)."""
  min_lift: float = setting(1.1, "how many times the most-popular list's top-100 accuracy on "
                            'the same split a model must reach to be blessed: a floor that '
                            'means the same on every release')
  min_top100: float = setting(0.0, 'an absolute top-100 accuracy a model must also reach to '
                              'be blessed (0: none; what a number means depends on the release)')
  max_regression: float = setting(0.01, "how much lower than the latest blessed model's "
                                  'top-100 accuracy a model may score and still be blessed')
  compare_with_blessed: bool = setting(
      True, 'compare each model with the latest blessed one (a Resolver of ML Metadata); off '
      'for orchestrators without resolver support')
  eval_sample: int = setting(
      250_000, 'the Evaluator ranks a seeded sample of this many eval ratings (the model, the '
      'latest blessed one and the most-popular list the same ones; all when the split has '
      'fewer; 0: all): 250,000 leave the top-100 a standard error below 0.001')
  eval_sample_seed: int = setting(0, "the eval sample's seed")

  def __post_init__(self):
    if self.eval_sample < 0:
      raise ValueError(f'--eval-sample cannot be negative ({self.eval_sample})')


@dataclasses.dataclass
class Serving:
  """The served model (the Trainer exports it) and where the Pusher puts it."""
  serving_k: int = setting(100, "the most titles a request to the pushed model's retrieve "
                           'signatures may ask for (their input k), and its default')
  serving_dir: str = setting('', 'where the Pusher writes each blessed model as a numbered '
                             'version, as TF Serving reads them', shown='OUTPUT_DIR/serving')
  refresh_catalog: bool = setting(
      False, 'instead of training: serve the latest blessed model over the release\'s current '
      'catalog (its candidate tower embeds the titles it never saw by their words, genres and '
      'year; the known titles\' embeddings must be unchanged), then evaluate and push it as a '
      'new version (docs/serving.md, "New titles without retraining")')

  def __post_init__(self):
    if self.serving_k < 1:
      raise ValueError(f'--serving-k must be at least 1, not {self.serving_k}')


@dataclasses.dataclass
class Local:
  """Where and how runner_local.py runs the pipeline (not offered by runner_kubeflow.py)."""
  output_dir: str = setting(DEFAULT_OUTPUT_DIR, 'where a local run writes: the artifacts, ML '
                            'Metadata, the served models and the logs default to inside it',
                            shown='outputs/ of the repository')
  pipeline_root: str = setting('', 'root of the artifacts', shown='OUTPUT_DIR/pipeline_root')
  metadata_path: str = setting('', 'SQLite ML Metadata file', shown='OUTPUT_DIR/metadata.sqlite')
  beam_args: Optional[List[str]] = setting(
      None, "Beam pipeline arguments, as one shell-quoted string ('' for Beam's default, the "
      'DirectRunner in memory)', shown='the DirectRunner in memory; for local data of 100 MB '
      'and more with a worker process per core')
  until: str = setting('', 'run only the components this one needs and itself (a component '
                       'id, e.g. Transform), to check a new release before training on it',
                       shown='all components')

  def __post_init__(self):
    self.output_dir = _absolute(self.output_dir)
    self.pipeline_root = _under(self.output_dir, self.pipeline_root, 'pipeline_root')
    self.metadata_path = _under(self.output_dir, self.metadata_path, 'metadata.sqlite')

  @property
  def logs_dir(self) -> str:
    return os.path.join(self.output_dir, 'logs')


@dataclasses.dataclass
class Kubeflow:
  """What runner_kubeflow.py compiles: the image, paths a cluster reads, the Trainer's
  resources."""
  image: str = setting('movielens-tfx:latest', 'the container image every task runs, built '
                       'from the Dockerfile')
  output_file: str = setting('movielens-tfx-kubeflow.json', 'where to write the compiled '
                             'PipelineJob (.json); the Kubeflow Pipelines spec is written '
                             'beside it as .yaml')
  # A cluster cannot read this machine's disk: data and outputs default to a bucket.
  output_dir: str = setting(f'gs://{PLACEHOLDER_BUCKET}/movielens-tfx',
                            'the bucket directory the artifacts, the data and the served '
                            'models default to inside')
  pipeline_root: str = setting('', 'root of the artifacts', shown='OUTPUT_DIR/pipeline_root')
  # Not chosen by a local directory's size: the cluster's runner is another matter.
  beam_args: List[str] = setting(
      DEFAULT_BEAM_ARGS, "Beam pipeline arguments for every Beam-running task, as one "
      "shell-quoted string (e.g. Dataflow's)", shown='none: the DirectRunner in memory')
  trainer_cpu: float = setting(0.0, "the Trainer's (and Tuner's) vCPU limit (0: the cluster's "
                               'default)')
  trainer_memory_gb: float = setting(0.0, "the Trainer's (and Tuner's) memory limit in GB (0: "
                                     "the cluster's default)")
  trainer_gpus: int = setting(0, 'GPUs for the Trainer and Tuner (with --trainer-gpu-type)')
  trainer_gpu_type: str = setting('', 'accelerator type (Vertex AI names)',
                                  shown=f'{DEFAULT_GPU_TYPE} with --trainer-gpus')

  def __post_init__(self):
    if not self.output_file.endswith('.json'):
      raise ValueError(f'--output-file must end in .json (the PipelineJob); the Kubeflow '
                       f'Pipelines spec is written beside it as .yaml, not {self.output_file!r}')
    if self.trainer_gpu_type and not self.trainer_gpus:
      raise ValueError('--trainer-gpu-type needs --trainer-gpus N')
    if self.trainer_gpus and not self.trainer_gpu_type:
      self.trainer_gpu_type = DEFAULT_GPU_TYPE
    self.output_dir = _absolute(self.output_dir)
    self.pipeline_root = _under(self.output_dir, self.pipeline_root, 'pipeline_root')


@dataclasses.dataclass
class PipelineConfig:
  """What create_pipeline builds the pipeline from: a section per part it configures."""
  run: Run = dataclasses.field(default_factory=Run)
  data: Data = dataclasses.field(default_factory=Data)
  statistics: Statistics = dataclasses.field(default_factory=Statistics)
  transform: Transform = dataclasses.field(default_factory=Transform)
  training: hparams.TrainingConfig = dataclasses.field(
      default_factory=lambda: hparams.preset(hparams.DEFAULT_PRESET))
  preset: str = hparams.DEFAULT_PRESET  # the preset `training` starts from (for the header)
  tuning: Tuning = dataclasses.field(default_factory=Tuning)
  gate: Gate = dataclasses.field(default_factory=Gate)
  serving: Serving = dataclasses.field(default_factory=Serving)

  @property
  def statistics_sample_rate(self) -> float:
    """The share of the examples StatisticsGen reads, by the size of the release's files."""
    return self.statistics.sample_rate(data_bytes(self.data.data_dir))

  def _resolve(self, output_dir: str, data_dir: str) -> None:
    """Fills in the paths left empty: the release's directory and the serving directory."""
    self.data.data_dir = self.data.data_dir or data_dir
    self.serving.serving_dir = _under(output_dir, self.serving.serving_dir, 'serving')


@dataclasses.dataclass
class LocalConfig(PipelineConfig):
  """A run of runner_local.py: the pipeline's sections and the Local one."""
  local: Local = dataclasses.field(default_factory=Local)

  def __post_init__(self):
    self._resolve(self.local.output_dir, fetch.default_dest(self.data.release))
    if self.local.beam_args is None:
      self.local.beam_args = local_beam_args(self.data.data_dir)


@dataclasses.dataclass
class KubeflowConfig(PipelineConfig):
  """What runner_kubeflow.py compiles: the pipeline's sections and the Kubeflow one."""
  kubeflow: Kubeflow = dataclasses.field(default_factory=Kubeflow)

  def __post_init__(self):
    output_dir = self.kubeflow.output_dir.rstrip('/')
    self._resolve(output_dir, f'{output_dir}/{KUBEFLOW_DATA_SUBDIR}{self.data.release}')


# The sections every runner offers (attribute of PipelineConfig, dataclass), in --help's
# order; Training's group comes after Transform's.
SECTIONS: Tuple[Tuple[str, type], ...] = (
    ('data', Data), ('statistics', Statistics), ('transform', Transform), ('tuning', Tuning),
    ('gate', Gate), ('serving', Serving), ('run', Run))
# Each runner's own section: (attribute of its configuration, dataclass).
RUNNER_SECTIONS = {LocalConfig: ('local', Local), KubeflowConfig: ('kubeflow', Kubeflow)}
PRESET_FLAG = flags.Flag(
    '--preset', 'preset', str, hparams.AUTO_PRESET,
    'training preset: ' + ', '.join(hparams.PRESETS) + f', or {hparams.AUTO_PRESET} to '
    'choose by the size of the release\'s files (' + ', '.join(
        f'{name} from {least // 2**20} MB' for name, least in hparams.PRESET_MIN_BYTES)
    + f', {hparams.DEFAULT_PRESET} below); the training flags below override single settings')


def training_flags() -> List[flags.Flag]:
  """The Training group's flags.

  Returns:
    --preset, then a flag per training setting, whose default is the preset's value.
  """
  default = hparams.PRESETS[hparams.DEFAULT_PRESET]
  return [PRESET_FLAG] + flags.flags_of(hparams.TrainingConfig, shown={
      field.name: f"the preset's; {hparams.DEFAULT_PRESET}: "
                  f'{flags.show(getattr(default, field.name))}'
      for field in dataclasses.fields(hparams.TrainingConfig)})


def _description(section: type) -> str:
  return ' '.join(section.__doc__.split())


def groups(runner: type) -> List[Tuple[str, str, List[flags.Flag]]]:
  """(title, description, flags) of each --help group of a runner's configuration.

  Args:
    runner: LocalConfig or KubeflowConfig.

  Returns:
    The groups in --help's order: the common sections, then the runner's own.
  """
  found = []
  for _, section in SECTIONS:
    found.append((section.__name__, _description(section), flags.flags_of(section)))
    if section is Transform:
      found.append(('Training', "modules/hparams.py's TrainingConfig: the Trainer's settings, "
                    "and those the Tuner's trials start from.", training_flags()))
  own = RUNNER_SECTIONS[runner][1]
  found.append((own.__name__, _description(own), flags.flags_of(own)))
  return found


def make_parser(runner: type, description: str = '') -> argparse.ArgumentParser:
  """The command-line parser of a runner's configuration, a --help group per section.

  Args:
    runner: LocalConfig or KubeflowConfig.
    description: the runner's one-line description.

  Returns:
    The parser.
  """
  parser = argparse.ArgumentParser(description=description)
  for title, text, group_flags in groups(runner):
    flags.add_group(parser, title, text, group_flags)
  return parser


def from_args(runner: type, args: argparse.Namespace):
  """A runner's configuration from parsed flags; ValueError names a setting out of range.

  Args:
    runner: LocalConfig or KubeflowConfig.
    args: what make_parser(runner) parsed.

  Returns:
    The configuration, its paths resolved.
  """
  attribute, own = RUNNER_SECTIONS[runner]
  sections = {name: flags.read_section(section, args) for name, section in SECTIONS}
  sections[attribute] = flags.read_section(own, args)
  overrides = flags.given(args, training_flags()[1:])
  config = runner(**sections)  # its paths resolved: the release's directory is known
  preset = args.preset or hparams.AUTO_PRESET
  if preset == hparams.AUTO_PRESET:
    preset = hparams.preset_for_size(data_bytes(config.data.data_dir))
  config.preset, config.training = preset, hparams.preset(preset, **overrides)
  return config


def parse_args(argv: Optional[Sequence[str]] = None, description: str = '',
               runner: type = LocalConfig) -> PipelineConfig:
  """A runner's command line; a setting out of range is a usage error that names its flag,
  before anything runs.

  Args:
    argv: the flags (default: sys.argv's).
    description: the runner's one-line description, for --help.
    runner: LocalConfig (runner_local.py's) or KubeflowConfig (runner_kubeflow.py's).

  Returns:
    The runner's configuration.
  """
  parser = make_parser(runner, description)
  args = parser.parse_args(argv)
  try:
    return from_args(runner, args)
  except ValueError as error:
    parser.error(str(error))
