"""Training the two-tower model: its input, the fit loop, validation over the catalog.

The training input is either in memory (columns of arrays, a batch gathered from shuffled
row numbers: the fastest) or streamed from the transformed TFRecords each epoch (files in a
new order each epoch, then a bounded shuffle buffer), for data larger than the memory
budget; `choose_input_mode` picks by size unless the configuration says which. Validation
scores a fixed, seeded sample of the eval split over the whole catalog.

Kept apart from run_fn so that benchmarks and experiments can train on a pipeline's
artifacts without running the pipeline.
"""
import dataclasses
import logging
import math
import os
import time
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from modules import features as f
from modules import metrics
from modules import model as m
from modules.hparams import TrainingConfig

logger = logging.getLogger('movielens_tfx.trainer')
FEATURES = (f.USER_INDEX, f.TIMESTAMP_BUCKET, f.TIMESTAMP_Z, f.MOVIE_TITLE)
STEPS_PER_EXECUTION = 16
# What one training example costs in memory while the in-memory input is built: its title
# as a Python bytes object in a NumPy array (~80 bytes), the three query features, the
# title's catalog position, and the tensors made of them.
BYTES_PER_EXAMPLE_IN_MEMORY = 160


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


def model_features(feature_spec: Dict) -> List[str]:
  """The transformed features the model may read: FEATURES and the release's user features."""
  return [*FEATURES, *(name for name in f.USER_FEATURES.values() if name in feature_spec)]


def load_transformed(file_patterns: Sequence[str], feature_spec: Dict) -> Dict[str, np.ndarray]:
  """The model's features of every transformed example."""
  return read_examples(file_patterns,
                       {name: feature_spec[name] for name in model_features(feature_spec)})


def count_examples(file_patterns: Sequence[str]) -> int:
  """How many records gzipped TFRecord files hold, without parsing them."""
  files = tf.io.gfile.glob(list(file_patterns))
  if not files:
    raise FileNotFoundError(f'no examples match {list(file_patterns)}')
  sizes = tf.data.TFRecordDataset(files, compression_type='GZIP').batch(1 << 16).map(
      lambda records: tf.shape(records, out_type=tf.int64)[0])
  return int(sizes.reduce(tf.constant(0, tf.int64), lambda total, size: total + size))


def choose_input_mode(config: TrainingConfig, num_examples: int) -> str:
  """'memory' or 'stream': the configuration's choice, or by size for 'auto'."""
  if config.input_mode != 'auto':
    return config.input_mode
  needed = num_examples * BYTES_PER_EXAMPLE_IN_MEMORY
  return 'memory' if needed <= config.memory_budget_mb * 2**20 else 'stream'


def shuffled_row_numbers(num_rows: int, batch_size: int, seed: int) -> tf.data.Dataset:
  """Batches of row numbers 0..num_rows-1, each pass over the dataset (an epoch) in a new
  seeded order: a NumPy permutation, 8 bytes a row, where tf.data's shuffle buffer of row
  numbers held about 280 (5.6 GB for 25M's 20 million training ratings) and took 57 times
  as long (bench/row_order.py)."""
  rng = np.random.default_rng(seed)

  def batches():  # called again for each pass
    order = rng.permutation(num_rows)
    for start in range(0, num_rows, batch_size):
      yield order[start:start + batch_size]

  # The cardinality tells Keras the epoch's length (steps_per_execution needs it).
  return tf.data.Dataset.from_generator(
      batches, output_signature=tf.TensorSpec([None], tf.int64)).apply(
          tf.data.experimental.assert_cardinality(-(-num_rows // batch_size)))


def learning_rate(config: TrainingConfig, steps_per_epoch: int):
  """The optimizer's learning rate: constant, or a half cosine from it down to 0 over the
  configured epochs."""
  if config.learning_rate_schedule == 'cosine':
    return tf.keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * steps_per_epoch)
  return config.learning_rate


@dataclasses.dataclass
class TrainFiles:
  """Training examples left in their files and read again every epoch."""
  file_patterns: List[str]
  feature_spec: Dict  # the transformed feature spec


@dataclasses.dataclass
class Vocabularies:
  num_users: int  # including the unknown-user index
  num_timestamp_buckets: int
  titles: List[str]  # the candidates: every catalog title, once
  title_tokens: List[str]
  title_genres: Optional[List[List[int]]] = None  # TFDS genre ids of each title
  # The release's user features: {transformed name: vocabulary size + 1 for "unknown"}.
  user_feature_buckets: Dict[str, int] = dataclasses.field(default_factory=dict)


class Progress(tf.keras.callbacks.Callback):
  """Validates every `validation_freq` epochs and reports progress a person can follow.

  With `patience` P > 0 it stops after P validations in a row without a better top-100 and
  restores the towers' weights of the best validated epoch (`best_epoch`): the epochs a
  release needs differ with its size, and a model past its best overfits.
  """

  def __init__(self, trainer: 'TwoTowerFit', report_every_seconds: float = 15.0):
    super().__init__()
    self.trainer = trainer
    self.report_every = report_every_seconds
    self.history: List[Dict] = []
    self.best_epoch, self.best_top100, self.best_weights = None, -1.0, None
    self.stale = 0  # validations since the best

  def on_train_begin(self, logs=None):
    self.started = self.last_report = time.monotonic()

  def on_epoch_end(self, epoch, logs=None):
    config = self.trainer.config
    done = epoch + 1
    entry = {'epoch': done, 'loss': float(logs['loss']),
             'seconds': time.monotonic() - self.started}
    if done % config.validation_freq == 0 or done == config.epochs:
      entry['val_top_k'] = self.trainer.validate()
      self._keep_best(done, entry['val_top_k']['100'])
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


  def _keep_best(self, epoch: int, top100: float) -> None:
    patience = self.trainer.config.patience
    if not patience:
      return
    if top100 > self.best_top100:
      self.best_epoch, self.best_top100, self.stale = epoch, top100, 0
      self.best_weights = self.model.get_weights()
      return
    self.stale += 1
    if self.stale >= patience:
      logger.info('Stopping at epoch %d: validation top-100 %.4f has not beaten epoch %d\'s '
                  '%.4f for %d validations', epoch, top100, self.best_epoch,
                  self.best_top100, self.stale)
      self.model.stop_training = True

  def on_train_end(self, logs=None):
    last = next((e['epoch'] for e in reversed(self.history) if 'val_top_k' in e), None)
    if self.best_weights is not None and last != self.best_epoch:
      self.model.set_weights(self.best_weights)
      logger.info('Restored the towers of epoch %d (validation top-100 %.4f)',
                  self.best_epoch, self.best_top100)


def _duration(seconds: float) -> str:
  minutes, seconds = divmod(int(math.ceil(seconds)), 60)
  return f'{minutes}m{seconds:02d}s' if minutes else f'{seconds}s'


def training_device(gpus: Optional[Sequence] = None) -> str:
  """The device the Trainer runs its steps on: the first GPU TensorFlow sees, else the CPU.
  (`gpus`: logical devices, TensorFlow's own list when None.)"""
  gpus = tf.config.list_logical_devices('GPU') if gpus is None else gpus
  return gpus[0].name if gpus else '/CPU:0'


def sample_rows(columns: Dict[str, np.ndarray], size: int, seed: int) -> Dict[str, np.ndarray]:
  """A fixed, seeded sample of `size` rows (in their order), or every row when size is 0
  or not smaller."""
  rows = len(next(iter(columns.values())))
  if not size or rows <= size:
    return columns
  keep = np.sort(np.random.default_rng(seed).choice(rows, size, replace=False))
  return {name: values[keep] for name, values in columns.items()}


class Scoring:
  """Validation and the most-popular baseline, for a fit with `query_tower`,
  `candidate_tower`, `vocabularies`, `eval_data`, `eval_true_index`, `title_counts` and
  `config`."""

  def candidate_embeddings(self) -> np.ndarray:
    return self.candidate_tower.predict(tf.constant(self.vocabularies.titles),
                                        batch_size=4096, verbose=0)

  def query_embeddings(self, data: Dict[str, np.ndarray]) -> np.ndarray:
    inputs = {name: data[name] for name in self.query_tower.feature_names}
    return self.query_tower.predict(inputs, batch_size=8192, verbose=0)

  def validate(self) -> Dict[str, float]:
    scores = metrics.embedding_scores(self.query_embeddings(self.eval_data),
                                      self.candidate_embeddings())
    return metrics.top_k(metrics.ranks_of_truth(scores, self.eval_true_index),
                         self.config.top_ks)

  def popularity_baseline(self) -> Dict[str, float]:
    return metrics.top_k(metrics.popularity_ranks(self.title_counts, self.eval_true_index),
                         self.config.top_ks)


class TwoTowerFit(Scoring):
  """Builds the towers for a configuration and trains them: `train` is in memory (columns of
  model_features) or TrainFiles to stream; `eval_` is in memory and sampled for validation."""

  def __init__(self, config: TrainingConfig, vocabularies: Vocabularies,
               train: Union[Dict[str, np.ndarray], TrainFiles], eval_: Dict[str, np.ndarray],
               log_dir: Optional[str] = None):
    self.config = config
    self.vocabularies = vocabularies
    tf.keras.utils.set_random_seed(config.seed)
    self.query_tower = m.QueryTower(vocabularies.num_users, vocabularies.num_timestamp_buckets,
                                    config, vocabularies.user_feature_buckets,
                                    name='query_tower')
    if config.user_features and not vocabularies.user_feature_buckets:
      logger.info('The release has no user features: the query tower uses the id and time')
    self.candidate_tower = m.CandidateTower(vocabularies.titles, vocabularies.title_tokens,
                                            config, vocabularies.title_genres,
                                            name='candidate_tower')
    self.streamed = train if isinstance(train, TrainFiles) else None
    if self.streamed:
      self.train_inputs = None
      self.title_counts = self._count_streamed_titles()
    else:
      train_title_index = self._catalog_index(train[f.MOVIE_TITLE])
      self.title_counts = np.bincount(train_title_index, minlength=len(vocabularies.titles))
      # Training reads titles as lookup positions (catalog index + 1; 0 is "unknown").
      self.train_inputs = {name: train[name] for name in self.query_tower.feature_names}
      self.train_inputs[f.TITLE_INDEX] = train_title_index + 1
    # Training ratings of each catalog title (its share is its sampling probability).
    self.num_train = int(self.title_counts.sum())
    # Index 0 of the title lookup is "unknown title": it never occurs in training.
    log_probability = np.log(np.maximum(np.concatenate([[0], self.title_counts]), 1)
                             / self.num_train).astype(np.float32)
    self.model = m.TwoTowerModel(self.query_tower, self.candidate_tower, config,
                                 title_log_probability=tf.constant(log_probability))
    # Several steps per call from Keras' loop into the graph: less Python per step.
    self.model.compile(optimizer=self._optimizer(), steps_per_execution=STEPS_PER_EXECUTION)
    self.num_eval = len(eval_[f.MOVIE_TITLE])
    self.eval_data = sample_rows(eval_, config.validation_sample, config.seed)
    self.eval_true_index = self._catalog_index(self.eval_data[f.MOVIE_TITLE])
    self.writer = tf.summary.create_file_writer(log_dir) if log_dir else None
    self.best_epoch: Optional[int] = None  # set by fit() when early stopping restored it

  def _optimizer(self) -> tf.keras.optimizers.Optimizer:
    rate = learning_rate(self.config, self.steps_per_epoch())
    if self.config.optimizer == 'adamw':
      return tf.keras.optimizers.AdamW(learning_rate=rate,
                                       weight_decay=self.config.weight_decay)
    optimizers = {'adagrad': tf.keras.optimizers.Adagrad, 'adam': tf.keras.optimizers.Adam}
    return optimizers[self.config.optimizer](learning_rate=rate)

  def _catalog_index(self, titles: np.ndarray) -> np.ndarray:
    """Positions of titles in the catalog (the candidate tower's lookup, less unknown)."""
    index = self.candidate_tower.title_lookup(tf.constant(titles)).numpy() - 1
    if (index < 0).any():
      missing = sorted({t.decode() for t in titles[index < 0]})[:5]
      raise ValueError(f'{int((index < 0).sum())} examples have titles missing from the '
                       f'catalog, e.g. {missing}')
    return index

  def dataset(self) -> tf.data.Dataset:
    """Batches of the training examples, in a new order every epoch."""
    return self._streamed_dataset() if self.streamed else self._in_memory_dataset()

  def _in_memory_dataset(self) -> tf.data.Dataset:
    """Gathers each batch's rows by row numbers: shuffling the rows themselves took three
    times the input pipeline's time."""
    columns = {name: tf.constant(values) for name, values in self.train_inputs.items()}
    return (shuffled_row_numbers(self.num_train, self.config.batch_size, self.config.seed)
            .map(lambda index: {name: tf.gather(values, index)
                                for name, values in columns.items()})
            .prefetch(tf.data.AUTOTUNE))

  def _records(self, shuffled: bool) -> tf.data.Dataset:
    files = tf.io.gfile.glob(self.streamed.file_patterns)
    if not files:
      raise FileNotFoundError(f'no examples match {self.streamed.file_patterns}')
    names = tf.data.Dataset.from_tensor_slices(files)
    if shuffled:  # and endless: Keras counts the steps of an epoch (steps_per_epoch)
      names = names.shuffle(len(files), seed=self.config.seed,
                            reshuffle_each_iteration=True).repeat()
    return names.interleave(
        lambda name: tf.data.TFRecordDataset(name, compression_type='GZIP'),
        cycle_length=min(len(files), 4), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True)

  def _parse(self, records: tf.Tensor, features: Sequence[str]) -> Dict[str, tf.Tensor]:
    spec = {name: self.streamed.feature_spec[name] for name in features}
    parsed = tf.io.parse_example(records, spec)
    return {name: tf.reshape(parsed[name], [-1]) for name in features}

  def _streamed_dataset(self) -> tf.data.Dataset:
    """The files in a new order each epoch, their records through a bounded shuffle buffer,
    parsed a batch at a time."""
    lookup = self.candidate_tower.title_lookup

    def inputs(records):
      query = self.query_tower.feature_names
      parsed = self._parse(records, (*query, f.MOVIE_TITLE))
      columns = {name: parsed[name] for name in query}
      columns[f.TITLE_INDEX] = lookup(parsed[f.MOVIE_TITLE])
      return columns

    return (self._records(shuffled=True)
            .shuffle(self.config.shuffle_buffer, seed=self.config.seed,
                     reshuffle_each_iteration=True)
            .batch(self.config.batch_size)
            .map(inputs, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))

  def _count_streamed_titles(self) -> np.ndarray:
    """Training ratings of each catalog title, counted in one pass over the files."""
    size = len(self.vocabularies.titles) + 1  # with "unknown" at 0
    lookup = self.candidate_tower.title_lookup
    counts = self._records(shuffled=False).batch(1 << 16).map(
        lambda records: tf.math.bincount(
            tf.cast(lookup(self._parse(records, [f.MOVIE_TITLE])[f.MOVIE_TITLE]), tf.int32),
            minlength=size, maxlength=size, dtype=tf.int64)
    ).reduce(tf.zeros([size], tf.int64), lambda total, batch: total + batch).numpy()
    if counts[0]:
      raise ValueError(f'{counts[0]} training examples have titles missing from the catalog')
    return counts[1:]

  def write_summaries(self, epoch: int, entry: Dict) -> None:
    if not self.writer:
      return
    with self.writer.as_default(step=epoch):
      tf.summary.scalar('loss', entry['loss'])
      for k, value in entry.get('val_top_k', {}).items():
        tf.summary.scalar(f'validation/top_{k}_accuracy', value)

  def steps_per_epoch(self) -> int:
    return math.ceil(self.num_train / self.config.batch_size)

  def fit(self) -> List[Dict]:
    progress = Progress(self)
    steps = self.steps_per_epoch() if self.streamed else None  # the stream repeats endlessly
    device = training_device()
    logger.info('Training on %s', device if device != '/CPU:0' else 'the CPU (no GPU visible)')
    with tf.device(device):
      self.model.fit(self.dataset(), epochs=self.config.epochs, steps_per_epoch=steps,
                     callbacks=[progress], verbose=0)
    self.best_epoch = progress.best_epoch
    self.history = progress.history
    return progress.history

  @property
  def pairs(self) -> List['TwoTowerFit']:
    """The pairs of towers trained (this one)."""
    return [self]

  @property
  def kept_epoch(self) -> int:
    """The epoch whose towers are kept: the best validated one with early stopping, else
    the last."""
    return self.best_epoch or self.history[-1]['epoch']

  def kept_top_k(self) -> Dict[str, float]:
    """Validation top-K of the towers kept."""
    return next(e['val_top_k'] for e in self.history if e['epoch'] == self.kept_epoch)


class EnsembleFit(Scoring):
  """`config.ensemble` pairs of towers trained one after the other from seeds seed,
  seed + 1, ... (each built just before it trains: the pair its seed trains alone), then
  served side by side (model.SideBySide): each score is the sum of the pairs' scores.
  Averaging several seeds' scores lifts top-100 on MovieLens 100k by more than any single
  setting tried (docs/model.md)."""

  def __init__(self, config: TrainingConfig, vocabularies: Vocabularies,
               train: Union[Dict[str, np.ndarray], TrainFiles], eval_: Dict[str, np.ndarray],
               log_dir: Optional[str] = None):
    self.config = config
    self._inputs = (vocabularies, train, eval_)
    self._log_dir = log_dir
    self.pairs = [self._pair(0)]
    first = self.pairs[0]
    # What every pair shares: the data, the catalog, the loss.
    for name in ('vocabularies', 'streamed', 'model', 'num_train', 'num_eval', 'title_counts',
                 'train_inputs', 'eval_data', 'eval_true_index'):
      setattr(self, name, getattr(first, name))
    self.query_tower = self.candidate_tower = None  # side by side once trained

  def _pair(self, index: int) -> TwoTowerFit:
    log_dir = self._log_dir and os.path.join(self._log_dir, f'pair-{index + 1}')
    return TwoTowerFit(dataclasses.replace(self.config, seed=self.config.seed + index,
                                           ensemble=1), *self._inputs, log_dir=log_dir)

  def fit(self) -> List[Dict]:
    """Trains every pair; returns the first pair's history (each pair keeps its own)."""
    for index in range(self.config.ensemble):
      if index == len(self.pairs):
        self.pairs.append(self._pair(index))
      logger.info('Training pair %d of %d (seed %d)', index + 1, self.config.ensemble,
                  self.pairs[index].config.seed)
      self.pairs[index].fit()
    self.query_tower = m.SideBySide([pair.query_tower for pair in self.pairs],
                                    name='query_tower')
    self.candidate_tower = m.SideBySide([pair.candidate_tower for pair in self.pairs],
                                        name='candidate_tower')
    return self.pairs[0].history

  @property
  def kept_epoch(self) -> int:
    """The first pair's kept epoch (each pair keeps its own)."""
    return self.pairs[0].kept_epoch

  def kept_top_k(self) -> Dict[str, float]:
    """Validation top-K of the pairs side by side."""
    return self.validate()


def make_fit(config: TrainingConfig, vocabularies: Vocabularies,
             train: Union[Dict[str, np.ndarray], TrainFiles], eval_: Dict[str, np.ndarray],
             log_dir: Optional[str] = None) -> Union[TwoTowerFit, EnsembleFit]:
  """The fit a configuration asks for: one pair of towers, or an ensemble of them."""
  fit = EnsembleFit if config.ensemble > 1 else TwoTowerFit
  return fit(config, vocabularies, train, eval_, log_dir=log_dir)
