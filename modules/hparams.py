"""Training settings of the two-tower model and their named presets.

`tutorial` is TFRS' "Building deep retrieval models" as published; `recommended` is the
best configuration measured here (README, "Quality"). The pipeline's flags start from a
preset and override single fields; the Trainer receives the result in its custom_config.
"""
import dataclasses
from typing import Any, Dict, List, Tuple


OPTIMIZERS = ('adagrad', 'adam')


@dataclasses.dataclass
class TrainingConfig:
  layer_sizes: List[int]
  embedding_dim: int = 32
  epochs: int = 300
  batch_size: int = 2048
  optimizer: str = 'adagrad'  # adagrad or adam
  learning_rate: float = 0.1
  validation_freq: int = 5  # epochs between validations over the whole catalog
  temperature: float = 1.0
  logq_correction: bool = False  # subtract log(sampling probability) of in-batch negatives
  remove_accidental_hits: bool = False
  unique_candidates: bool = False  # one softmax column per distinct title of a batch
  movie_features: bool = False  # genres and release year in the candidate tower
  seed: int = 42
  top_ks: Tuple[int, ...] = (1, 5, 10, 50, 100)

  def __post_init__(self):
    if self.optimizer not in OPTIMIZERS:
      raise ValueError(f'unknown optimizer {self.optimizer!r}; choose one of '
                       f'{", ".join(OPTIMIZERS)}')
    for name in ('epochs', 'batch_size', 'embedding_dim', 'validation_freq'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name} must be at least 1, not {getattr(self, name)}')
    if not self.layer_sizes or min(self.layer_sizes) < 1:
      raise ValueError(f'layer sizes must be positive, not {self.layer_sizes}')

  def to_json_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_json_dict(cls, values: Dict[str, Any]) -> 'TrainingConfig':
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
      raise ValueError(f'unknown training settings: {", ".join(sorted(unknown))}')
    values = dict(values)
    values['top_ks'] = tuple(values.get('top_ks', cls.top_ks))
    return cls(**values)


PRESETS = {
    'tutorial': TrainingConfig(layer_sizes=[64, 32]),
    # README, "Quality": each departure from the tutorial measured on MovieLens 100k.
    'recommended': TrainingConfig(layer_sizes=[128, 64, 32], epochs=20, optimizer='adam',
                                  learning_rate=0.002, logq_correction=True,
                                  movie_features=True),
}
DEFAULT_PRESET = 'recommended'


def preset(name: str, **overrides) -> TrainingConfig:
  """A preset with some fields overridden (None leaves the preset's value)."""
  if name not in PRESETS:
    raise ValueError(f'unknown preset {name!r}; choose one of {", ".join(PRESETS)}')
  base = PRESETS[name].to_json_dict()
  base.update({key: value for key, value in overrides.items() if value is not None})
  return TrainingConfig.from_json_dict(base)
