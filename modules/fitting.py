"""Fitting the two-tower model: one pair of towers, or an ensemble of pairs side by side.

`fit` trains what a configuration asks for and returns a FitResult: the towers to ship and
the figures the Trainer reports. A `TowerPair` is one pair of towers built for a
configuration, with its training model, its training input and its validation sample;
benchmarks use it to time single epochs. Validation scores a fixed, seeded sample of the
eval split over the whole catalog (modules/metrics.py).

Kept apart from run_fn so that benchmarks and experiments can train on a pipeline's
artifacts without running the pipeline.
"""
import dataclasses
import logging
import math
import os
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from modules import callbacks, features, inputs, metrics, model
from modules.hparams import TrainingConfig
from shared import names

logger = logging.getLogger(f'{names.LOGGER}.trainer')
STEPS_PER_EXECUTION = 16


def learning_rate(config: TrainingConfig, steps_per_epoch: int):
  """The optimizer's learning rate: constant, or a half cosine from it down to 0 over the
  configured epochs."""
  if config.learning_rate_schedule == 'cosine':
    return tf.keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * steps_per_epoch)
  return config.learning_rate


def training_device(gpus: Optional[Sequence] = None) -> str:
  """The device the Trainer runs its steps on: the first GPU TensorFlow sees, else the CPU.
  (`gpus`: logical devices, TensorFlow's own list when None.)"""
  gpus = tf.config.list_logical_devices('GPU') if gpus is None else gpus
  return gpus[0].name if gpus else '/CPU:0'


def catalog_index(candidate_tower: model.CandidateTower, titles: np.ndarray) -> np.ndarray:
  """Positions of titles in the catalog (the candidate tower's lookup, less unknown);
  raises if a title is outside it."""
  index = candidate_tower.title_lookup(tf.constant(titles)).numpy() - 1
  if (index < 0).any():
    missing = sorted({t.decode() for t in titles[index < 0]})[:5]
    raise ValueError(f'{int((index < 0).sum())} examples have titles missing from the '
                     f'catalog, e.g. {missing}')
  return index


def embed_candidates(candidate_tower: tf.keras.Model, titles: Sequence[str]) -> np.ndarray:
  """The embeddings of titles, [titles, dimension]."""
  return candidate_tower.predict(tf.constant(titles), batch_size=4096, verbose=0)


def embed_queries(query_tower: tf.keras.Model, data: Dict[str, np.ndarray]) -> np.ndarray:
  """The embeddings of the queries of columns holding the tower's features."""
  query = {name: data[name] for name in query_tower.feature_names}
  return query_tower.predict(query, batch_size=8192, verbose=0)


@dataclasses.dataclass
class ValidationSample:
  """The held-out ratings validation scores: a seeded sample of the eval split."""
  data: Dict[str, np.ndarray]  # the sample's columns of model features
  true_index: np.ndarray  # each rating's title as a catalog position
  num_eval: int  # ratings in the eval split

  def top_k(self, query_tower: tf.keras.Model, candidate_tower: tf.keras.Model,
            titles: Sequence[str]) -> Dict[str, float]:
    """The towers' top-K accuracy over the whole catalog of `titles`."""
    scores = metrics.embedding_scores(embed_queries(query_tower, self.data),
                                      embed_candidates(candidate_tower, titles))
    return metrics.top_k(metrics.ranks_of_truth(scores, self.true_index), names.TOP_KS)


@dataclasses.dataclass
class PairFit:
  """One pair of towers trained, as kept."""
  seed: int
  history: List[Dict]  # EpochHistory's entries
  kept_epoch: int  # the best validated one with early stopping, else the last
  kept_top_k: Dict[str, float]  # its validation top-K
  query_tower: model.QueryTower
  candidate_tower: model.CandidateTower


@dataclasses.dataclass
class FitResult:
  """What a fit leaves: the towers to ship and the figures history.json reports."""
  pairs: List[PairFit]  # one, or an ensemble's, in training order (seeds seed, seed + 1, ...)
  query_tower: tf.keras.Model  # the pair's, or the pairs' side by side (model.SideBySide)
  candidate_tower: tf.keras.Model
  kept_top_k: Dict[str, float]  # validation top-K of the towers to ship
  popularity_baseline_top_k: Dict[str, float]  # the most-rated titles, on the same ratings
  validation: ValidationSample
  num_train: int  # training ratings
  input_mode: str  # 'memory' or 'stream'
  set_up_seconds: float  # building the first pair, before its first epoch

  @property
  def history(self) -> List[Dict]:
    """The first pair's history (each pair keeps its own)."""
    return self.pairs[0].history

  @property
  def kept_epoch(self) -> int:
    """The first pair's kept epoch (each pair keeps its own)."""
    return self.pairs[0].kept_epoch


class TowerPair:
  """The towers for a configuration, their training model, training input and validation
  sample: `train` is in memory (columns of inputs.model_features) or TrainFiles to stream;
  `eval_` is in memory and sampled for validation."""

  def __init__(self, config: TrainingConfig, vocabularies: inputs.Vocabularies,
               train: inputs.TrainInput, eval_: Dict[str, np.ndarray]):
    self.config = config
    self.vocabularies = vocabularies
    tf.keras.utils.set_random_seed(config.seed)
    self.query_tower = model.QueryTower(
        vocabularies.num_users, vocabularies.num_timestamp_buckets, config,
        vocabularies.user_feature_buckets, name='query_tower')
    if config.user_features and not vocabularies.user_feature_buckets:
      logger.info('The release has no user features: the query tower uses the id and time')
    self.candidate_tower = model.CandidateTower(vocabularies.titles, vocabularies.title_tokens,
                                                config, vocabularies.title_genres,
                                                name='candidate_tower')
    self.streamed = train if isinstance(train, inputs.TrainFiles) else None
    if self.streamed:
      self.train_inputs = None
      self.title_counts = inputs.count_streamed_titles(
          self.streamed, self.candidate_tower.title_lookup, len(vocabularies.titles))
    else:
      train_title_index = catalog_index(self.candidate_tower, train[features.MOVIE_TITLE])
      self.title_counts = np.bincount(train_title_index, minlength=len(vocabularies.titles))
      # Training reads titles as lookup positions (catalog index + 1; 0 is "unknown").
      self.train_inputs = {name: train[name] for name in self.query_tower.feature_names}
      self.train_inputs[features.TITLE_INDEX] = train_title_index + 1
    # Training ratings of each catalog title (its share is its sampling probability).
    self.num_train = int(self.title_counts.sum())
    # Index 0 of the title lookup is "unknown title": it never occurs in training.
    log_probability = np.log(np.maximum(np.concatenate([[0], self.title_counts]), 1)
                             / self.num_train).astype(np.float32)
    self.model = model.TwoTowerModel(self.query_tower, self.candidate_tower, config,
                                     title_log_probability=tf.constant(log_probability))
    # Several steps per call from Keras' loop into the graph: less Python per step.
    self.model.compile(optimizer=self._optimizer(), steps_per_execution=STEPS_PER_EXECUTION)
    sample = inputs.sample_rows(eval_, config.validation_sample, config.seed)
    self.validation = ValidationSample(
        sample, catalog_index(self.candidate_tower, sample[features.MOVIE_TITLE]),
        num_eval=len(eval_[features.MOVIE_TITLE]))

  def _optimizer(self) -> tf.keras.optimizers.Optimizer:
    rate = learning_rate(self.config, self.steps_per_epoch())
    if self.config.optimizer == 'adamw':
      return tf.keras.optimizers.AdamW(learning_rate=rate,
                                       weight_decay=self.config.weight_decay)
    optimizers = {'adagrad': tf.keras.optimizers.Adagrad, 'adam': tf.keras.optimizers.Adam}
    return optimizers[self.config.optimizer](learning_rate=rate)

  def steps_per_epoch(self) -> int:
    return math.ceil(self.num_train / self.config.batch_size)

  def dataset(self) -> tf.data.Dataset:
    """Batches of the training examples, in a new order every epoch."""
    if self.streamed:
      return inputs.streamed_dataset(self.streamed, self.query_tower.feature_names,
                                     self.candidate_tower.title_lookup, self.config)
    return inputs.in_memory_dataset(self.train_inputs, self.config.batch_size,
                                    self.config.seed)

  def validate(self) -> Dict[str, float]:
    """The towers' validation top-K as they are now."""
    return self.validation.top_k(self.query_tower, self.candidate_tower,
                                 self.vocabularies.titles)

  def popularity_baseline(self) -> Dict[str, float]:
    """Top-K of the most-rated training titles on the validation sample."""
    return metrics.top_k(metrics.popularity_ranks(self.title_counts,
                                                  self.validation.true_index), names.TOP_KS)

  def train(self, log_dir: Optional[str] = None) -> PairFit:
    """Trains the towers for the configured epochs, validating and early-stopping as
    configured (modules/callbacks.py), and keeps the best validated epoch's towers with
    early stopping, else the last epoch's.

    Args:
      log_dir: where TensorBoard's summaries go (none when None).

    Returns:
      The pair as kept.
    """
    config = self.config
    history = callbacks.EpochHistory()
    stopping = callbacks.EarlyStopping(config.patience) if config.patience else None
    # In this order: each reads what the ones before it added to the epoch's logs.
    in_order = [callbacks.ElapsedTime(),
                callbacks.Validation(self.validate, config.validation_freq, config.epochs),
                *([stopping] if stopping else []),
                *([callbacks.Summaries(log_dir)] if log_dir else []),
                history, callbacks.ProgressLog(config.epochs)]
    steps_per_epoch = self.steps_per_epoch() if self.streamed else None  # endless stream
    device = training_device()
    logger.info('Training on %s', device if device != '/CPU:0' else 'the CPU (no GPU visible)')
    with tf.device(device):
      self.model.fit(self.dataset(), epochs=config.epochs, steps_per_epoch=steps_per_epoch,
                     callbacks=in_order, verbose=0)
    kept = stopping.kept_epoch if stopping else history.entries[-1]['epoch']
    return PairFit(seed=config.seed, history=history.entries, kept_epoch=kept,
                   kept_top_k=next(entry['val_top_k'] for entry in history.entries
                                   if entry['epoch'] == kept),
                   query_tower=self.query_tower, candidate_tower=self.candidate_tower)


def fit(config: TrainingConfig, vocabularies: inputs.Vocabularies, train: inputs.TrainInput,
        eval_: Dict[str, np.ndarray], log_dir: Optional[str] = None) -> FitResult:
  """Trains the pair of towers a configuration asks for, or `config.ensemble` pairs.

  An ensemble's pairs train one after the other from seeds seed, seed + 1, ... (each built
  just before it trains: the pair its seed trains alone), then serve side by side
  (model.SideBySide): each score is the sum of the pairs' scores. Averaging several seeds'
  scores lifts top-100 on MovieLens 100k by more than any single setting tried
  (docs/model.md). The towers' unknown rows become averages (QueryTower.average_unknown,
  CandidateTower.average_unknown)
  before an ensemble validates them as they ship.

  Args:
    config: the training settings.
    vocabularies: the catalog and Transform's vocabulary sizes.
    train: the training examples, in memory (columns of inputs.model_features) or
      inputs.TrainFiles to stream.
    eval_: the eval examples in memory; validation scores a sample of them.
    log_dir: where TensorBoard's summaries go (an ensemble's in pair-1/, pair-2/, ...).

  Returns:
    The FitResult: the towers to ship, each pair's history and the figures to report.
  """
  started = time.monotonic()
  fits = []
  for index in range(config.ensemble):
    pair = TowerPair(dataclasses.replace(config, seed=config.seed + index, ensemble=1),
                     vocabularies, train, eval_)
    if index == 0:  # every pair has the same data: the first one's serves the report
      first, set_up_seconds = pair, time.monotonic() - started
      _log_start(config, first)
    pair_log_dir = log_dir
    if config.ensemble > 1:
      logger.info('Training pair %d of %d (seed %d)', index + 1, config.ensemble,
                  config.seed + index)
      pair_log_dir = log_dir and os.path.join(log_dir, f'pair-{index + 1}')
    fits.append(pair.train(pair_log_dir))
  if len(fits) == 1:
    query_tower, candidate_tower = fits[0].query_tower, fits[0].candidate_tower
  else:
    query_tower = model.SideBySide([pair.query_tower for pair in fits], name='query_tower')
    candidate_tower = model.CandidatesSideBySide([pair.candidate_tower for pair in fits],
                                                 name='candidate_tower')
  query_tower.average_unknown()
  candidate_tower.average_unknown()
  kept_top_k = (fits[0].kept_top_k if len(fits) == 1 else
                first.validation.top_k(query_tower, candidate_tower, vocabularies.titles))
  return FitResult(pairs=fits, query_tower=query_tower, candidate_tower=candidate_tower,
                   kept_top_k=kept_top_k, popularity_baseline_top_k=first.popularity_baseline(),
                   validation=first.validation, num_train=first.num_train,
                   input_mode='stream' if first.streamed else 'memory',
                   set_up_seconds=set_up_seconds)


def _log_start(config: TrainingConfig, pair: TowerPair) -> None:
  pairs = f', {config.ensemble} pairs of towers side by side' if config.ensemble > 1 else ''
  loss = 'exact softmax over the catalog' if pair.model.exact_softmax else 'in-batch softmax'
  logger.info('Training %s%s on %s ratings (%s; validation on %s of %s eval ratings) with %s '
              'candidate titles, %s: %s', f'layers {config.layer_sizes}', pairs,
              f'{pair.num_train:,}', 'streamed from its files' if pair.streamed else 'in memory',
              f'{len(pair.validation.true_index):,}', f'{pair.validation.num_eval:,}',
              f'{len(pair.vocabularies.titles):,}', loss,
              ', '.join(f'{k}={v}' for k, v in config.to_json_dict().items()
                        if k not in ('layer_sizes', 'top_ks')))
