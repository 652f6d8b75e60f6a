"""The Keras callbacks of a fit, one job each, in the order Keras must call them.

`ElapsedTime` stamps each epoch's logs with the seconds since training began; `Validation`
scores the towers over the whole catalog every `validation_freq` epochs and after the last,
adding `val_top_K` to the epoch's logs; `EarlyStopping` (Keras' own) stops on validation
top-100 and keeps the best validated epoch's weights; `Summaries` writes TensorBoard
scalars, `EpochHistory` keeps history.json's entries and `ProgressLog` tells a person how
far training is. The later ones read what the earlier ones added to the logs: Keras passes
one logs dict through its callbacks in their order.
"""
import logging
import math
import time
from typing import Callable, Dict, List, Optional

import tensorflow as tf

from shared import names

logger = logging.getLogger(f'{names.LOGGER}.trainer')
VALIDATION_PREFIX = 'val_top_'
MONITOR = f'{VALIDATION_PREFIX}{names.GATE_KEY}'  # what early stopping watches
ELAPSED = 'seconds'


def validated_top_k(logs: Dict) -> Dict[str, float]:
  """The top-K figures Validation added to an epoch's logs, {'100': ...}; empty when the
  epoch was not validated."""
  return {key[len(VALIDATION_PREFIX):]: value for key, value in logs.items()
          if key.startswith(VALIDATION_PREFIX)}


class ElapsedTime(tf.keras.callbacks.Callback):
  """Adds `seconds` since training began to each epoch's logs, taken before the epoch's
  validation runs (so the history's seconds are the earlier epochs' and validations')."""

  def on_train_begin(self, logs=None):
    self.started = time.monotonic()

  def on_epoch_end(self, epoch, logs=None):
    logs[ELAPSED] = time.monotonic() - self.started


class Validation(tf.keras.callbacks.Callback):
  """Validates every `every` epochs and after the last of `epochs`: adds each of
  `validate()`'s top-K figures to the epoch's logs as val_top_K."""

  def __init__(self, validate: Callable[[], Dict[str, float]], every: int, epochs: int):
    super().__init__()
    self.validate, self.every, self.epochs = validate, every, epochs

  def on_epoch_end(self, epoch, logs=None):
    done = epoch + 1
    if done % self.every == 0 or done == self.epochs:
      logs.update({f'{VALIDATION_PREFIX}{k}': value for k, value in self.validate().items()})


class EarlyStopping(tf.keras.callbacks.EarlyStopping):
  """Keras' EarlyStopping on validation top-100 (higher is better), restoring the best
  validated epoch's weights when training ends: with `patience` P, training stops after P
  validations in a row without a better top-100 (the epochs a release needs differ with its
  size, and a model past its best overfits).

  Keras' own counts only the epochs whose logs hold the figure, so patience counts
  validations; this subclass skips the other epochs without Keras' warning that the figure
  is missing, and says in the log when it stops and what it restored. `kept_epoch` is the
  best validated epoch (counted from 1).
  """

  def __init__(self, patience: int):
    super().__init__(monitor=MONITOR, mode='max', patience=patience, restore_best_weights=True)
    self.last_validated: Optional[int] = None

  @property
  def kept_epoch(self) -> int:
    return self.best_epoch + 1

  def on_epoch_end(self, epoch, logs=None):
    if self.monitor not in logs:
      return
    self.last_validated = epoch
    super().on_epoch_end(epoch, logs)
    if self.model.stop_training and self.stopped_epoch == epoch:
      logger.info('Stopping at epoch %d: validation top-%s %.4f has not beaten epoch %d\'s '
                  '%.4f for %d validations', epoch + 1, names.GATE_KEY, logs[self.monitor],
                  self.kept_epoch, self.best, self.wait)

  def on_train_end(self, logs=None):
    super().on_train_end(logs)  # restores the best weights
    if self.best_weights is not None and self.last_validated != self.best_epoch:
      logger.info('Restored the towers of epoch %d (validation top-%s %.4f)', self.kept_epoch,
                  names.GATE_KEY, self.best)


class Summaries(tf.keras.callbacks.Callback):
  """TensorBoard scalars in `log_dir`: each epoch's loss and, when validated, its top-K as
  validation/top_K_accuracy, at step = the epoch (counted from 1)."""

  def __init__(self, log_dir: str):
    super().__init__()
    self.writer = tf.summary.create_file_writer(log_dir)

  def on_epoch_end(self, epoch, logs=None):
    with self.writer.as_default(step=epoch + 1):
      tf.summary.scalar('loss', float(logs['loss']))
      for k, value in validated_top_k(logs).items():
        tf.summary.scalar(f'validation/top_{k}_accuracy', value)


class EpochHistory(tf.keras.callbacks.Callback):
  """history.json's per-epoch entries: {'epoch' (from 1), 'loss', 'seconds' since training
  began, and for a validated epoch 'val_top_k': {K: accuracy}}."""

  def __init__(self):
    super().__init__()
    self.entries: List[Dict] = []

  def on_train_begin(self, logs=None):
    self.entries = []

  def on_epoch_end(self, epoch, logs=None):
    entry = {'epoch': epoch + 1, 'loss': float(logs['loss']), 'seconds': logs[ELAPSED]}
    top_k = validated_top_k(logs)
    if top_k:
      entry['val_top_k'] = top_k
    self.entries.append(entry)


class ProgressLog(tf.keras.callbacks.Callback):
  """A line a person can follow at each validation and at most every `every_seconds`
  otherwise: the epoch, its loss, the latest validation top-100 and the time left."""

  def __init__(self, epochs: int, every_seconds: float = 15.0):
    super().__init__()
    self.epochs, self.every = epochs, every_seconds

  def on_train_begin(self, logs=None):
    self.started = self.last_report = time.monotonic()
    self.latest = ''  # the latest validation, as the line shows it

  def on_epoch_end(self, epoch, logs=None):
    done, now = epoch + 1, time.monotonic()
    top_k = validated_top_k(logs)
    if names.GATE_KEY in top_k:
      self.latest = f', val top-{names.GATE_KEY} {top_k[names.GATE_KEY]:.4f} (epoch {done})'
    if top_k or now - self.last_report > self.every:
      self.last_report = now
      left = (now - self.started) / done * (self.epochs - done)
      logger.info('epoch %d/%d: loss %.1f%s, %s left', done, self.epochs, float(logs['loss']),
                  self.latest, _duration(left))


def _duration(seconds: float) -> str:
  minutes, seconds = divmod(int(math.ceil(seconds)), 60)
  return f'{minutes}m{seconds:02d}s' if minutes else f'{seconds}s'
