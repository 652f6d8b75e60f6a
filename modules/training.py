"""Training the two-tower model: data in memory, the fit loop, validation over the catalog.

Kept apart from run_fn so that benchmarks and experiments can train on a pipeline's
artifacts without running the pipeline.
"""
import dataclasses
import logging
import math
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from modules import features as f
from modules import metrics
from modules import model as m
from modules.hparams import TrainingConfig

logger = logging.getLogger('movielens_tfx.trainer')
FEATURES = (f.USER_INDEX, f.TIMESTAMP_BUCKET, f.TIMESTAMP_Z, f.MOVIE_TITLE)
STEPS_PER_EXECUTION = 16


def read_examples(file_patterns: Sequence[str], spec: Dict) -> Dict[str, np.ndarray]:
  """The single-valued features `spec` names of every example in gzipped TFRecord files,
  as arrays held in memory."""
  files = tf.io.gfile.glob(list(file_patterns))
  if not files:
    raise FileNotFoundError(f'no examples match {list(file_patterns)}')
  dataset = tf.data.TFRecordDataset(files, compression_type='GZIP').batch(65536).map(
      lambda records: tf.io.parse_example(records, spec))
  parts = list(dataset.as_numpy_iterator())
  return {name: np.concatenate([part[name].reshape(-1) for part in parts]) for name in spec}


def load_transformed(file_patterns: Sequence[str], feature_spec: Dict) -> Dict[str, np.ndarray]:
  """The model's features of every transformed example."""
  return read_examples(file_patterns, {name: feature_spec[name] for name in FEATURES})


@dataclasses.dataclass
class Vocabularies:
  num_users: int  # including the unknown-user index
  num_timestamp_buckets: int
  titles: List[str]  # the candidates: every catalog title, once
  title_tokens: List[str]
  title_genres: Optional[List[List[int]]] = None  # TFDS genre ids of each title


class Progress(tf.keras.callbacks.Callback):
  """Validates every `validation_freq` epochs and reports progress a person can follow."""

  def __init__(self, trainer: 'TwoTowerFit', report_every_seconds: float = 15.0):
    super().__init__()
    self.trainer = trainer
    self.report_every = report_every_seconds
    self.history: List[Dict] = []

  def on_train_begin(self, logs=None):
    self.started = self.last_report = time.monotonic()

  def on_epoch_end(self, epoch, logs=None):
    config = self.trainer.config
    done = epoch + 1
    entry = {'epoch': done, 'loss': float(logs['loss']),
             'seconds': time.monotonic() - self.started}
    if done % config.validation_freq == 0 or done == config.epochs:
      entry['val_top_k'] = self.trainer.validate()
    self.trainer.write_summaries(done, entry)  # the loss of every epoch, validation when run
    self.history.append(entry)
    now = time.monotonic()
    if 'val_top_k' in entry or now - self.last_report > self.report_every:
      self.last_report = now
      left = (now - self.started) / done * (config.epochs - done)
      latest = next((e for e in reversed(self.history) if 'val_top_k' in e), None)
      validated = (f', val top-100 {latest["val_top_k"]["100"]:.4f} (epoch {latest["epoch"]})'
                   if latest and '100' in latest['val_top_k'] else '')
      logger.info('epoch %d/%d: loss %.1f%s, %s left', done, config.epochs, entry['loss'],
                  validated, _duration(left))


def _duration(seconds: float) -> str:
  minutes, seconds = divmod(int(math.ceil(seconds)), 60)
  return f'{minutes}m{seconds:02d}s' if minutes else f'{seconds}s'


class TwoTowerFit:
  """Builds the towers for a configuration and trains them on in-memory examples."""

  def __init__(self, config: TrainingConfig, vocabularies: Vocabularies,
               train: Dict[str, np.ndarray], eval_: Dict[str, np.ndarray],
               log_dir: Optional[str] = None):
    self.config = config
    self.vocabularies = vocabularies
    self.train_data, self.eval_data = train, eval_
    tf.keras.utils.set_random_seed(config.seed)
    self.query_tower = m.QueryTower(vocabularies.num_users, vocabularies.num_timestamp_buckets,
                                    config, name='query_tower')
    self.candidate_tower = m.CandidateTower(vocabularies.titles, vocabularies.title_tokens,
                                            config, vocabularies.title_genres,
                                            name='candidate_tower')
    train_title_index = self._catalog_index(train[f.MOVIE_TITLE])
    # Training ratings of each catalog title (its share is its sampling probability).
    self.title_counts = np.bincount(train_title_index, minlength=len(vocabularies.titles))
    # Index 0 of the title lookup is "unknown title": it never occurs in training.
    log_probability = np.log(np.maximum(np.concatenate([[0], self.title_counts]), 1)
                             / self.title_counts.sum()).astype(np.float32)
    self.model = m.TwoTowerModel(self.query_tower, self.candidate_tower, config,
                                 title_log_probability=tf.constant(log_probability))
    # Several steps per call from Keras' loop into the graph: less Python per step.
    self.model.compile(optimizer=self._optimizer(), steps_per_execution=STEPS_PER_EXECUTION)
    self.eval_true_index = self._catalog_index(eval_[f.MOVIE_TITLE])
    # Training reads titles as lookup positions (catalog index + 1; 0 is "unknown").
    self.train_inputs = {name: train[name] for name in (f.USER_INDEX, f.TIMESTAMP_BUCKET,
                                                       f.TIMESTAMP_Z)}
    self.train_inputs[f.TITLE_INDEX] = train_title_index + 1
    self.writer = tf.summary.create_file_writer(log_dir) if log_dir else None

  def _optimizer(self) -> tf.keras.optimizers.Optimizer:
    optimizers = {'adagrad': tf.keras.optimizers.Adagrad, 'adam': tf.keras.optimizers.Adam}
    return optimizers[self.config.optimizer](learning_rate=self.config.learning_rate)

  def _catalog_index(self, titles: np.ndarray) -> np.ndarray:
    """Positions of titles in the catalog (the candidate tower's lookup, less unknown)."""
    index = self.candidate_tower.title_lookup(tf.constant(titles)).numpy() - 1
    if (index < 0).any():
      missing = sorted({t.decode() for t in titles[index < 0]})[:5]
      raise ValueError(f'{int((index < 0).sum())} examples have titles missing from the '
                       f'catalog, e.g. {missing}')
    return index

  def dataset(self) -> tf.data.Dataset:
    """Batches of the training examples, reshuffled every epoch.

    Shuffles row numbers and gathers each batch's rows, rather than shuffling the rows
    themselves: the same batches, in a third of the input pipeline's time.
    """
    columns = {name: tf.constant(values) for name, values in self.train_inputs.items()}
    rows = len(self.train_data[f.MOVIE_TITLE])
    return (tf.data.Dataset.range(rows)
            .shuffle(rows, seed=self.config.seed, reshuffle_each_iteration=True)
            .batch(self.config.batch_size)
            .map(lambda index: {name: tf.gather(values, index)
                                for name, values in columns.items()})
            .prefetch(tf.data.AUTOTUNE))

  def candidate_embeddings(self) -> np.ndarray:
    return self.candidate_tower.predict(tf.constant(self.vocabularies.titles),
                                        batch_size=4096, verbose=0)

  def query_embeddings(self, data: Dict[str, np.ndarray]) -> np.ndarray:
    inputs = {name: data[name] for name in (f.USER_INDEX, f.TIMESTAMP_BUCKET, f.TIMESTAMP_Z)}
    return self.query_tower.predict(inputs, batch_size=8192, verbose=0)

  def validate(self) -> Dict[str, float]:
    scores = metrics.embedding_scores(self.query_embeddings(self.eval_data),
                                      self.candidate_embeddings())
    return metrics.top_k(metrics.ranks_of_truth(scores, self.eval_true_index),
                         self.config.top_ks)

  def popularity_baseline(self) -> Dict[str, float]:
    return metrics.top_k(metrics.popularity_ranks(self.title_counts, self.eval_true_index),
                         self.config.top_ks)

  def write_summaries(self, epoch: int, entry: Dict) -> None:
    if not self.writer:
      return
    with self.writer.as_default(step=epoch):
      tf.summary.scalar('loss', entry['loss'])
      for k, value in entry.get('val_top_k', {}).items():
        tf.summary.scalar(f'validation/top_{k}_accuracy', value)

  def average_unknown_user(self) -> None:
    """Gives the unknown-user index (the vocabulary's last, never seen in training) the mean
    of the trained users' embeddings: an unknown user is then queried as an average user,
    not by a random initial vector."""
    table = self.query_tower.user_embedding.embeddings
    table[-1].assign(tf.reduce_mean(table[:-1], axis=0))

  def fit(self) -> List[Dict]:
    progress = Progress(self)
    self.model.fit(self.dataset(), epochs=self.config.epochs, callbacks=[progress], verbose=0)
    return progress.history
