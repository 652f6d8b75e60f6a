"""Training settings of the two-tower model and their named presets.

`tutorial` is TFRS' "Building deep retrieval models" as published; `recommended` is the
best configuration measured here on MovieLens 100k (docs/model.md); `large` is for a million
ratings and more on a CPU (docs/scale.md). The presets are the only source of training
values: TrainingConfig's fields have no defaults. The pipeline's flags start from a preset
and override single fields; the Trainer receives the result in its custom_config.
"""
import dataclasses
from typing import Any, Dict, List, Tuple

from shared import names


OPTIMIZERS = ('adagrad', 'adam', 'adamw')
LEARNING_RATE_SCHEDULES = ('constant', 'cosine')
INPUT_MODES = ('auto', 'memory', 'stream')
SOFTMAXES = ('in-batch', 'catalog', 'auto')
# --softmax auto's limit: the exact softmax scores every title at every step, so its cost per
# step grows with the catalog. Measured on 100k's 1,664 titles (docs/model.md); a bound
# chosen between that and 25M's 62,000, not measured at 10,000.
CATALOG_SOFTMAX_MAX_TITLES = 10_000


def _setting(help_text: str):
  """A training setting: no default (the presets give every value); its help text is the
  command-line flag's (pipeline/configs.py)."""
  return dataclasses.field(metadata={'help': help_text})


@dataclasses.dataclass
class TrainingConfig:
  """Every training setting, declared once: the model reads the values, the runners make a
  flag of each, and the presets below are the only source of their values."""
  layer_sizes: List[int] = _setting(
      'dense layers of both towers, e.g. 128,64,32 (ReLU on all but the last)')
  embedding_dim: int = _setting('width of the user, timestamp, title and word embeddings')
  epochs: int = _setting('training epochs')
  batch_size: int = _setting('training batch size (and in-batch negatives per query)')
  optimizer: str = _setting('adagrad, adam or adamw (Adam with decoupled weight decay)')
  learning_rate: float = _setting("the optimizer's learning rate")
  learning_rate_schedule: str = _setting(
      "'constant' or 'cosine' (from --learning-rate down to 0 over --epochs along a half "
      'cosine)')
  weight_decay: float = _setting("adamw's weight decay (Keras' default)")
  validation_freq: int = _setting('epochs between validations over the whole catalog')
  dropout: float = _setting('dropout after each ReLU layer of both towers, in training')
  temperature: float = _setting('divides the scores of the in-batch softmax')
  normalize: bool = _setting(
      'scale both towers\' embeddings to unit length: scores are cosines (use with a '
      'temperature below 1)')
  logq_correction: bool = _setting(
      "subtract each in-batch candidate's log sampling probability")
  remove_accidental_hits: bool = _setting(
      'do not count the same title elsewhere in a batch as negative')
  unique_candidates: bool = _setting('one softmax column per distinct title of a batch')
  softmax: str = _setting(
      "the training loss's candidates: 'in-batch' (the batch's titles, as TFRS' "
      "Retrieval task; the logQ correction applies), 'catalog' (every catalog title: the exact "
      "softmax, nothing sampled to correct) or 'auto' (catalog for catalogs of at most "
      f"{CATALOG_SOFTMAX_MAX_TITLES:,} titles, in-batch beyond)")
  movie_features: bool = _setting(
      "add the movie's genres and release year to the candidate tower")
  user_features: bool = _setting(
      "add the user's age group, gender, occupation and zip-code prefix to the query "
      'tower (releases that have them)')
  user_id_dropout: float = _setting(
      'share of training examples whose user id is hidden (the unknown-user index), so '
      'the query tower learns to serve users it never saw from their features')
  seed: int = _setting('random seed of initialisation and shuffling')
  ensemble: int = _setting(
      'train this many pairs of towers, from seeds --seed, --seed + 1, ..., and serve them '
      "as one model: each side's embeddings are the pairs' side by side, so a score is the sum "
      "of the pairs' scores (training time grows with it)")
  patience: int = _setting(
      'stop after this many validations in a row without a better top-100 and keep the '
      'best validated epoch\'s towers (0: train every epoch, keep the last)')
  validation_sample: int = _setting(
      'held-out ratings scored at each validation: a fixed, seeded sample of the '
      'eval split when it is larger (0: all of it); the Evaluator scores every one')
  input_mode: str = _setting(
      "'memory' (the examples as arrays, shuffled by row), 'stream' (read from the "
      "TFRecords each epoch, shuffled by file and in a bounded buffer) or 'auto': memory "
      'when they fit --memory-budget-mb')
  memory_budget_mb: int = _setting('the most the in-memory training input may take')
  shuffle_buffer: int = _setting('examples in the streaming input\'s shuffle buffer')

  def __post_init__(self):
    for name, value, choices in (
        ('learning-rate schedule', self.learning_rate_schedule, LEARNING_RATE_SCHEDULES),
        ('optimizer', self.optimizer, OPTIMIZERS), ('input mode', self.input_mode, INPUT_MODES),
        ('softmax', self.softmax, SOFTMAXES)):
      if value not in choices:
        raise ValueError(f'unknown {name} {value!r}; choose one of {", ".join(choices)}')
    if self.softmax == 'catalog' and (self.unique_candidates or self.remove_accidental_hits):
      raise ValueError('unique_candidates and remove_accidental_hits shape the in-batch '
                       "softmax; the catalog softmax has neither (use --softmax in-batch)")
    if self.patience < 0:
      raise ValueError(f'patience must be 0 (off) or more, not {self.patience}')
    if not 0 <= self.dropout < 1:
      raise ValueError(f'dropout must be in [0, 1), not {self.dropout}')
    if not 0 <= self.user_id_dropout < 1:
      raise ValueError(f'user_id_dropout must be in [0, 1), not {self.user_id_dropout}')
    if self.validation_sample < 0:
      raise ValueError(f'validation_sample must be 0 (all) or more, not {self.validation_sample}')
    for name in ('epochs', 'batch_size', 'embedding_dim', 'validation_freq', 'memory_budget_mb',
                 'shuffle_buffer', 'ensemble'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name} must be at least 1, not {getattr(self, name)}')
    if not self.layer_sizes or min(self.layer_sizes) < 1:
      raise ValueError(f'layer sizes must be positive, not {self.layer_sizes}')

  @property
  def top_ks(self) -> Tuple[int, ...]:
    """The K of every top-K figure: not a setting (shared.names)."""
    return names.TOP_KS

  def uses_catalog_softmax(self, num_titles: int) -> bool:
    """Whether training scores every one of a catalog's `num_titles` (the exact softmax)."""
    return self.softmax == 'catalog' or (
        self.softmax == 'auto' and num_titles <= CATALOG_SOFTMAX_MAX_TITLES)

  def to_json_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_json_dict(cls, values: Dict[str, Any]) -> 'TrainingConfig':
    """The TrainingConfig of to_json_dict's values: every setting, and no other.

    Args:
      values: {setting: value}, as the pipeline's custom_config carries them.

    Returns:
      The TrainingConfig; ValueError names any unknown or missing setting.
    """
    known = {field.name for field in dataclasses.fields(cls)}
    unknown, missing = set(values) - known, known - set(values)
    if unknown:
      raise ValueError(f'unknown training settings: {", ".join(sorted(unknown))}')
    if missing:
      raise ValueError(f'missing training settings: {", ".join(sorted(missing))}')
    return cls(**values)


# TFRS' "Building deep retrieval models" as published, with this project's validation and
# input settings.
_TUTORIAL = TrainingConfig(
    layer_sizes=[64, 32], embedding_dim=32, epochs=300, batch_size=2048, optimizer='adagrad',
    learning_rate=0.1, learning_rate_schedule='constant', weight_decay=0.004,
    validation_freq=5, dropout=0.0, temperature=1.0, normalize=False, logq_correction=False,
    remove_accidental_hits=False, unique_candidates=False, softmax='in-batch',
    movie_features=False, user_features=False, user_id_dropout=0.0, seed=42, ensemble=1,
    patience=0, validation_sample=100_000, input_mode='auto', memory_budget_mb=4096,
    shuffle_buffer=200_000)
# docs/model.md: each departure from the tutorial measured on MovieLens 100k (three seeds).
# Towers held back by dropout, the exact softmax where the catalog allows it (--softmax
# auto) and the user's features; three pairs from consecutive seeds served side by side (an
# ensemble: 192-wide embeddings). Each pair [256, 128, 64] in batches of 1,024 at Adam 0.004
# for a fixed 20 epochs, validated once at the end: on 100k the quality of three wider
# pairs stopped early, in about half the Trainer's time ("Where the default run's time
# goes").
_RECOMMENDED = dataclasses.replace(
    _TUTORIAL, layer_sizes=[256, 128, 64], epochs=20, batch_size=1024, optimizer='adam',
    learning_rate=0.004, validation_freq=20, dropout=0.2, softmax='auto', logq_correction=True,
    movie_features=True, user_features=True, ensemble=3)
PRESETS = {
    'tutorial': _TUTORIAL,
    'recommended': _RECOMMENDED,
    # For a million ratings and more on a CPU (docs/scale.md): narrow towers, no dropout, the
    # in-batch softmax and one pair, stopped early (patience 1 of validations every 5
    # epochs), cost far less per epoch than the recommended preset.
    'large': dataclasses.replace(
        _TUTORIAL, layer_sizes=[128, 64, 32], epochs=20, optimizer='adam', learning_rate=0.002,
        logq_correction=True, movie_features=True, patience=1),
}
# For ten million ratings and more (docs/scale.md, the whole pipeline at 25M ratings): the
# large preset's towers for one epoch in batches of 8,192, validated once.
PRESETS['xlarge'] = dataclasses.replace(PRESETS['large'], epochs=1, validation_freq=1,
                                        batch_size=8192, learning_rate=0.004)
DEFAULT_PRESET = 'recommended'
# `--preset auto` (the runners' default) picks a preset by the size of the release's files:
# MovieLens 100k's are 2 MB, 1M's 25 MB, 10M's 253 MB, 25M's 680 MB. On 1M the recommended
# preset's three pairs cost 86 s an epoch here (over an hour and a half a run), large's
# one pair blessed in 10 min 35 s (docs/scale.md).
AUTO_PRESET = 'auto'
PRESET_MIN_BYTES = (('xlarge', 200 * 2**20), ('large', 10 * 2**20))


def preset_for_size(data_bytes: int) -> str:
  """The preset `--preset auto` chooses for a release of `data_bytes` bytes.

  Args:
    data_bytes: the size of the release's files (0 when unknown, e.g. in a bucket).

  Returns:
    The name of a preset of PRESETS.
  """
  return next((name for name, least in PRESET_MIN_BYTES if data_bytes >= least),
              DEFAULT_PRESET)


# What the Tuner searches (modules/tuner.py): the settings that mattered in the experiments
# (docs/model.md), the recommended preset's value first (KerasTuner's default). Lists of
# layer sizes are written as text, which KerasTuner can choose.
SEARCH_SPACE = {
    'layer_sizes': ('256,128,64', '512,256,64', '128,64,32', '64,32'),
    'embedding_dim': (32, 64),
    'learning_rate': (0.004, 0.002, 0.001),
    'dropout': (0.2, 0.0, 0.3),
    'softmax': ('auto', 'in-batch'),
    'temperature': (1.0, 0.5),
    'logq_correction': (True, False),
    'epochs': (20, 40),
    'user_features': (True, False),
}


def with_tuned(config: TrainingConfig, values: Dict[str, Any]) -> TrainingConfig:
  """`config` with a Tuner's chosen values in place of its own.

  Args:
    config: the settings the Tuner started from.
    values: the Tuner's choices, by SEARCH_SPACE's names (layer sizes as text).

  Returns:
    The TrainingConfig the Trainer trains with.
  """
  values = dict(values)
  if isinstance(values.get('layer_sizes'), str):
    values['layer_sizes'] = [int(size) for size in values['layer_sizes'].split(',')]
  return TrainingConfig.from_json_dict({**config.to_json_dict(), **values})


def preset(name: str, **overrides) -> TrainingConfig:
  """A preset with some settings overridden.

  Args:
    name: a name of PRESETS.
    **overrides: settings by name; None leaves the preset's value.

  Returns:
    The TrainingConfig; ValueError for an unknown preset or a value out of range.
  """
  if name not in PRESETS:
    raise ValueError(f'unknown preset {name!r}; choose one of {", ".join(PRESETS)}')
  base = PRESETS[name].to_json_dict()
  base.update({key: value for key, value in overrides.items() if value is not None})
  return TrainingConfig.from_json_dict(base)
