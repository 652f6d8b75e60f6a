"""tuner_fn: the Tuner's search over training settings (TFX Tuner, KerasTuner).

Each trial trains the two-tower model with one choice of hparams.SEARCH_SPACE on the
training split less a validation share carved from it (a seeded sample of its rows), and
scores the best validated top-100 over the whole catalog on that share; the eval split is
left to the Evaluator. The search is KerasTuner's Bayesian optimisation, seeded; its best
settings reach the Trainer through the Tuner's best_hyperparameters artifact.
"""
import dataclasses
import logging
import time
from typing import Dict

import keras_tuner
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.tuner.component import TunerFnResult

from modules import callbacks, features, fitting, hparams, inputs
from shared import names

logger = logging.getLogger(f'{names.LOGGER}.tuner')
OBJECTIVE = callbacks.MONITOR  # a trial's best validated top-100


def search_space(values: Dict = hparams.SEARCH_SPACE) -> keras_tuner.HyperParameters:
  """KerasTuner's hyperparameters of the search space, the first choice of each the default."""
  space = keras_tuner.HyperParameters()
  for name, choices in values.items():
    if all(isinstance(choice, bool) for choice in choices):
      space.Boolean(name, default=choices[0])
    else:
      space.Choice(name, list(choices), default=choices[0])
  return space


def carve_validation(columns: Dict[str, np.ndarray], percent: int, seed: int):
  """(train, validation): a seeded `percent`% of the rows held out of training."""
  rows = len(columns[features.MOVIE_TITLE])
  held = np.zeros(rows, bool)
  held[np.random.default_rng(seed).choice(rows, rows * percent // 100, replace=False)] = True
  return ({name: values[~held] for name, values in columns.items()},
          {name: values[held] for name, values in columns.items()})


class RetrievalTuner(keras_tuner.BayesianOptimization):
  """Trains one pair of towers (fitting.TowerPair) for each trial's settings; the trial's
  score is its best validated top-100 (early stopping keeps the best epoch, so `epochs` is
  a cap). A trial trains one pair (trials an ensemble's multiple of the time would leave a
  small budget few); the Trainer then trains the configured ensemble with the best
  settings."""

  def __init__(self, base: hparams.TrainingConfig, **kwargs):
    super().__init__(**kwargs)
    self.base = base

  def run_trial(self, trial, vocabularies, train, validation):
    config = hparams.with_tuned(self.base, trial.hyperparameters.values)
    tf.keras.backend.clear_session()
    started = time.monotonic()
    history = fitting.TowerPair(config, vocabularies, train, validation).train().history
    best = max((e for e in history if 'val_top_k' in e),
               key=lambda e: e['val_top_k'][names.GATE_KEY])
    seconds = time.monotonic() - started
    logger.info('Trial %s: validation top-%s %.4f (epoch %d) in %.0f s with %s',
                trial.trial_id, names.GATE_KEY, best['val_top_k'][names.GATE_KEY],
                best['epoch'], seconds, trial.hyperparameters.values)
    return {OBJECTIVE: best['val_top_k'][names.GATE_KEY], 'seconds': seconds,
            'best_epoch': float(best['epoch'])}


def tuner_fn(fn_args) -> TunerFnResult:
  """Builds the Tuner's search: TFX Tuner's entry point.

  Args:
    fn_args: TFX's FnArgs: train_files (the transformed train split),
      transform_graph_path, working_dir and custom_config: names.TRAINING (the settings a
      trial starts from, as JSON), names.TUNE_TRIALS (the budget), 'validation_percent'
      (the share of train held out to score trials) and names.CATALOG_FILES (added by
      CatalogTuner).

  Returns:
    TunerFnResult: the RetrievalTuner, and the fit_kwargs its trials train on
    (vocabularies, train and the carved validation share).
  """
  custom_config = fn_args.custom_config or {}
  base = hparams.TrainingConfig.from_json_dict(custom_config[names.TRAINING])
  # Trials hold their input in memory and validate on all of the carved share.
  base = dataclasses.replace(base, input_mode='memory', validation_sample=0)
  tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
  vocabularies = inputs.read_vocabularies(tft_output, custom_config[names.CATALOG_FILES])
  train = inputs.load_transformed(fn_args.train_files, tft_output.transformed_feature_spec())
  train, validation = carve_validation(
      train, int(custom_config[names.TUNE_VALIDATION_PERCENT]),
      base.seed)
  logger.info('Tuning on %s training ratings, validating on %s carved from them',
              f'{len(train[features.MOVIE_TITLE]):,}',
              f'{len(validation[features.MOVIE_TITLE]):,}')
  trials = int(custom_config[names.TUNE_TRIALS])
  tuner = RetrievalTuner(
      base, hyperparameters=search_space(),
      objective=keras_tuner.Objective(OBJECTIVE, direction='max'),
      max_trials=trials, seed=base.seed,
      # Random trials first, then the Gaussian process (KerasTuner's default of three per
      # setting would leave a budget of ten all random).
      num_initial_points=max(2, trials // 3),
      directory=fn_args.working_dir, project_name='two_tower', overwrite=True)
  return TunerFnResult(tuner=tuner, fit_kwargs={
      'vocabularies': vocabularies, 'train': train, 'validation': validation})
