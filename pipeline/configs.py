"""The pipeline's configuration: every default in one place, every field a command-line flag.

`PipelineConfig` holds the settings; `add_flags` turns its fields into `--kebab-case` flags
(with their help text and defaults) and `from_flags` reads them back, so the local and the
Kubeflow runners share one definition.
"""
import argparse
import dataclasses
import os
import shlex
from typing import Any, Dict, List, Optional, Tuple

from data import fetch
from modules import hparams
from shared import names

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT_DIR = os.path.join(REPO_ROOT, 'outputs')

# No Beam arguments: Beam's own default, the DirectRunner in memory with one worker, the
# fastest mode on this 2-core machine at 100k and 1M ratings (bench/scale.py,
# bench/beam_direct_runner.py; docs/scale.md). Given any Beam argument, TFX also builds an
# sdist of itself for every Beam component (about 2 s each), which only remote workers need.
DEFAULT_BEAM_ARGS = ()
# From this much local data on, one worker process per core: at 10M ratings (253 MB)
# multi_processing ran ExampleGen through Transform in half in_memory's time, at 1M (25 MB)
# it was 1.28x slower (docs/scale.md). The threshold lies between; not measured closer.
MULTI_PROCESSING_MIN_BYTES = 100 * 2**20


def data_bytes(data_dir: str) -> int:
  """The size of the files under a local data directory (0 for a URI or a missing one)."""
  if '://' in data_dir or not os.path.isdir(data_dir):
    return 0
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(data_dir) for name in names)


def local_beam_args(data_dir: str) -> List[str]:
  """The local run's Beam arguments when none are given: the DirectRunner in memory, or with
  a worker process per core for data of MULTI_PROCESSING_MIN_BYTES and more."""
  cores = os.cpu_count() or 1
  if cores < 2 or data_bytes(data_dir) < MULTI_PROCESSING_MIN_BYTES:
    return list(DEFAULT_BEAM_ARGS)
  return ['--direct_running_mode=multi_processing', f'--direct_num_workers={cores}']


def _field(default, help_text: str):
  if isinstance(default, (list, tuple)):
    return dataclasses.field(default_factory=lambda: list(default), metadata={'help': help_text})
  return dataclasses.field(default=default, metadata={'help': help_text})


@dataclasses.dataclass
class PipelineConfig:
  """Everything a run can be told; the defaults are the recommended local run."""
  pipeline_name: str = _field(names.PIPELINE_NAME, 'name of the pipeline in ML Metadata')
  release: str = _field(fetch.DEFAULT_RELEASE, 'the MovieLens release to read, as `python -m '
                        'data.fetch --release RELEASE` stores it in data/movielens/ml-RELEASE: '
                        + ', '.join(fetch.RELEASES))
  data_dir: str = _field('', 'directory of one MovieLens release in any layout (100k, 1M, '
                         'CSV); overrides --release (default: data/movielens/ml-RELEASE)')
  output_dir: str = _field(DEFAULT_OUTPUT_DIR,
                           'where a local run writes; the paths below default to inside it')
  pipeline_root: str = _field('', 'root of the artifacts (default: OUTPUT_DIR/pipeline_root)')
  metadata_path: str = _field('', 'SQLite ML Metadata file '
                              '(default: OUTPUT_DIR/metadata.sqlite)')
  serving_dir: str = _field('', 'where the Pusher writes each blessed model as a numbered '
                            'version, as TF Serving reads them (default: OUTPUT_DIR/serving)')
  layout: str = _field('auto', "data layout, or 'auto' to detect it from the file names")
  eval_percent: int = _field(20, 'percentage of ratings in the eval split (stable hash)')
  holdout_users: int = _field(0, 'percentage of users held out of training entirely (a stable '
                              'hash of the id; all their ratings in eval), for the '
                              "Evaluator's cold-start figures")
  max_bad_rows: int = _field(0, 'unusable input rows that may be skipped (and reported) '
                             'before the run fails')
  beam_args: Optional[List[str]] = _field(
      None, "Beam pipeline arguments, as one shell-quoted string ('' for Beam's default, the "
      'DirectRunner in memory); by default that, or for local data of 100 MB and more the '
      'DirectRunner with a worker process per core')
  until: str = _field('', 'run only the components this one needs and itself (a component '
                      'id, e.g. Transform), to check a new release before training on it')
  cache: bool = _field(True, "reuse a component's earlier outputs when its inputs and "
                       'settings are unchanged (TFX caching)')
  timestamp_boundaries: int = _field(1000, 'equal-width timestamp bucket boundaries '
                                     '(Transform)')
  max_title_tokens: int = _field(10_000, 'size of the title-word vocabulary (Transform)')
  min_lift: float = _field(1.1, 'how many times the most-popular list\'s top-100 accuracy on '
                           'the same split a model must reach to be blessed (Evaluator): a '
                           'floor that means the same on every release')
  min_top100: float = _field(0.0, 'an absolute top-100 accuracy a model must also reach to be '
                             'blessed (0: none; what a number means depends on the release)')
  max_regression: float = _field(0.01, 'how much lower than the latest blessed model\'s '
                                 'top-100 accuracy a model may score and still be blessed')
  compare_with_blessed: bool = _field(
      True, 'compare each model with the latest blessed one (a Resolver of ML Metadata); '
      'off for orchestrators without resolver support')
  serving_k: int = _field(100, 'titles the pushed model\'s retrieve signatures return')
  tune: bool = _field(False, 'search the training settings with a Tuner (KerasTuner) on the '
                      'train split before the Trainer, which then uses the best it found')
  tune_trials: int = _field(10, 'trials the Tuner may run (each a training run)')
  preset: str = _field(hparams.DEFAULT_PRESET, 'training preset: '
                       + ', '.join(hparams.PRESETS) + '; the training flags below override '
                       'single settings')
  # Training settings given on the command line, over the preset's.
  training_overrides: Dict[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if not 0 < self.eval_percent < 100:
      raise ValueError(f'--eval-percent must be between 1 and 99, not {self.eval_percent}')
    if not 0 <= self.holdout_users < 100:
      raise ValueError(f'--holdout-users must be between 0 and 99, not {self.holdout_users}')
    if self.max_bad_rows < 0:
      raise ValueError(f'--max-bad-rows cannot be negative ({self.max_bad_rows})')
    if self.tune_trials < 1:
      raise ValueError(f'--tune-trials must be at least 1, not {self.tune_trials}')
    if self.serving_k < 1:
      raise ValueError(f'--serving-k must be at least 1, not {self.serving_k}')
    if self.release not in fetch.RELEASES:
      raise ValueError(f'--release must be one of {", ".join(fetch.RELEASES)}, '
                       f'not {self.release!r}')
    self.data_dir = _absolute(self.data_dir) or fetch.default_dest(self.release)
    if self.beam_args is None:
      self.beam_args = local_beam_args(self.data_dir)
    self.output_dir = _absolute(self.output_dir)
    self.pipeline_root = _absolute(self.pipeline_root) or os.path.join(
        self.output_dir, 'pipeline_root')
    self.metadata_path = _absolute(self.metadata_path) or os.path.join(
        self.output_dir, 'metadata.sqlite')
    self.serving_dir = _absolute(self.serving_dir) or os.path.join(self.output_dir, 'serving')
    self.training = hparams.preset(self.preset, **self.training_overrides)

  @property
  def logs_dir(self) -> str:
    return os.path.join(self.output_dir, 'logs')


def _absolute(path: str) -> str:
  """A local path made absolute; URIs such as gs://bucket/x and '' are kept as they are."""
  if not path or '://' in path:
    return path
  return os.path.abspath(os.path.expanduser(path))


def _flag(name: str) -> str:
  return '--' + name.replace('_', '-')


def _default(field: dataclasses.Field):
  if field.default_factory is not dataclasses.MISSING:
    return field.default_factory()
  return field.default


def _int_list(text: str) -> List[int]:
  try:
    return [int(size) for size in text.split(',')]
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected sizes like 64,32, not {text!r}') from None


def training_flags() -> Dict[str, dataclasses.Field]:
  """The training settings settable from the command line: those with help text."""
  return {field.name: field for field in dataclasses.fields(hparams.TrainingConfig)
          if field.metadata.get('help')}


def add_flags(parser: argparse.ArgumentParser,
              defaults: Optional[Dict[str, Tuple[Any, str]]] = None) -> None:
  """Adds one flag per PipelineConfig field and training setting, showing its default.

  `defaults` replaces some fields' default and help text: {field: (default, help)}.
  """
  group = parser.add_argument_group('pipeline configuration (pipeline/configs.py)')
  for field in dataclasses.fields(PipelineConfig):
    if field.name == 'training_overrides':
      continue
    default = _default(field)
    help_text = field.metadata['help']
    if defaults and field.name in defaults:
      default, help_text = defaults[field.name]
    if default not in ('', [], (), None):
      help_text += ' (default: %(default)s)'
    if field.type is bool:
      # BooleanOptionalAction shows the default itself.
      group.add_argument(_flag(field.name), action=argparse.BooleanOptionalAction,
                         default=default, help=field.metadata['help'])
    elif field.type in (List[str], Optional[List[str]]):
      group.add_argument(_flag(field.name), type=shlex.split, default=default,
                         help=help_text.replace('%(default)s', shlex.join(default or [])))
    else:
      group.add_argument(_flag(field.name), type=field.type, default=default, help=help_text)


  training = parser.add_argument_group(
      'training (default: the preset\'s value; modules/hparams.py)')
  for name, field in training_flags().items():
    if field.type is bool:
      training.add_argument(_flag(name), action=argparse.BooleanOptionalAction,
                            help=field.metadata['help'])
    else:
      kind = _int_list if name == 'layer_sizes' else field.type
      training.add_argument(_flag(name), type=kind, help=field.metadata['help'])


def from_flags(args: argparse.Namespace) -> PipelineConfig:
  """The PipelineConfig of parsed flags (paths left empty are derived from --output-dir)."""
  values = {field.name: getattr(args, field.name) for field in dataclasses.fields(PipelineConfig)
            if field.name != 'training_overrides'}
  overrides = {name: getattr(args, name) for name in training_flags()
               if getattr(args, name) is not None}
  return PipelineConfig(**values, training_overrides=overrides)


def parse_args(argv: Optional[List[str]] = None, description: str = '') -> PipelineConfig:
  """The PipelineConfig of a local run's command line; a setting out of range is a usage
  error that names the flag, before anything runs."""
  parser = argparse.ArgumentParser(description=description)
  add_flags(parser)
  args = parser.parse_args(argv)
  try:
    return from_flags(args)
  except ValueError as error:
    parser.error(str(error))
