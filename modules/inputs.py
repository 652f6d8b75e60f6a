"""What the Trainer and the Tuner read, and the training input they feed the model.

The transformed examples (gzipped TFRecords) are read into columns of arrays; the catalog's
examples give the candidate titles and their genres; Transform's output gives the
vocabulary sizes. The training input is either in memory (columns of arrays, a batch
gathered from shuffled row numbers: the fastest) or streamed from the transformed TFRecords
each epoch (files in a new order each epoch, then a bounded shuffle buffer), for data larger
than the memory budget; `choose_input_mode` picks by size unless the configuration says
which.
"""
import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from modules import features
from modules.hparams import TrainingConfig

# The transformed features every model reads; the release's user features come on top.
FEATURES = (features.USER_INDEX, features.TIMESTAMP_BUCKET, features.TIMESTAMP_Z,
            features.MOVIE_TITLE)
# What one training example costs in memory while the in-memory input is built: its title
# as a Python bytes object in a NumPy array (~80 bytes), the three query features, the
# title's catalog position, and the tensors made of them.
BYTES_PER_EXAMPLE_IN_MEMORY = 160


@dataclasses.dataclass
class TrainFiles:
  """Training examples left in their files and read again every epoch."""
  file_patterns: List[str]
  feature_spec: Dict  # the transformed feature spec


@dataclasses.dataclass
class Vocabularies:
  """The catalog and the sizes of Transform's vocabularies: what the towers are built for."""
  num_users: int  # including the unknown-user index
  num_timestamp_buckets: int
  titles: List[str]  # the candidates: every catalog title, once
  title_tokens: List[str]
  title_genres: Optional[List[List[int]]] = None  # TFDS genre ids of each title
  # The release's user features: {transformed name: vocabulary size + 1 for "unknown"}.
  user_feature_buckets: Dict[str, int] = dataclasses.field(default_factory=dict)


# The training examples: columns in memory, or files to stream.
TrainInput = Union[Dict[str, np.ndarray], TrainFiles]


def _files(file_patterns: Sequence[str]) -> List[str]:
  files = tf.io.gfile.glob(list(file_patterns))
  if not files:
    raise FileNotFoundError(f'no examples match {list(file_patterns)}')
  return files


def read_examples(file_patterns: Sequence[str], spec: Dict) -> Dict[str, np.ndarray]:
  """Reads single-valued features of every example in gzipped TFRecord files.

  Args:
    file_patterns: glob patterns of the files.
    spec: a tf.io feature spec of single-valued features.

  Returns:
    {feature name: a 1-D array of its value in every example, in file order}.
  """
  dataset = tf.data.TFRecordDataset(_files(file_patterns), compression_type='GZIP').batch(
      65536).map(lambda records: tf.io.parse_example(records, spec))
  parts = list(dataset.as_numpy_iterator())
  return {name: np.concatenate([part[name].reshape(-1) for part in parts]) for name in spec}


def model_features(feature_spec: Dict) -> List[str]:
  """The transformed features the model may read: FEATURES and the release's user features."""
  return [*FEATURES,
          *(name for name in features.USER_FEATURES.values() if name in feature_spec)]


def load_transformed(file_patterns: Sequence[str], feature_spec: Dict) -> Dict[str, np.ndarray]:
  """Reads the model's features of every transformed example into memory.

  Args:
    file_patterns: glob patterns of Transform's gzipped TFRecords.
    feature_spec: the transformed feature spec.

  Returns:
    {feature name: array} of model_features(feature_spec).
  """
  return read_examples(file_patterns,
                       {name: feature_spec[name] for name in model_features(feature_spec)})


def count_examples(file_patterns: Sequence[str]) -> int:
  """How many records gzipped TFRecord files hold, without parsing them."""
  sizes = tf.data.TFRecordDataset(_files(file_patterns), compression_type='GZIP').batch(
      1 << 16).map(lambda records: tf.shape(records, out_type=tf.int64)[0])
  return int(sizes.reduce(tf.constant(0, tf.int64), lambda total, size: total + size))


def choose_input_mode(config: TrainingConfig, num_examples: int) -> str:
  """'memory' or 'stream': the configuration's choice, or by size for 'auto'."""
  if config.input_mode != 'auto':
    return config.input_mode
  needed = num_examples * BYTES_PER_EXAMPLE_IN_MEMORY
  return 'memory' if needed <= config.memory_budget_mb * 2**20 else 'stream'


def read_catalog_titles_and_genres(file_pattern: str) -> Tuple[List[str], List[List[int]]]:
  """Reads the catalog split's examples (ExampleGen's, one per movie).

  Args:
    file_pattern: a glob pattern of the catalog's gzipped TFRecords.

  Returns:
    (titles, genres): every distinct title, sorted, and each title's genre ids (the union
    over the movies that share a title).
  """
  files = tf.io.gfile.glob(file_pattern)
  if not files:
    raise FileNotFoundError(f'no catalog examples match {file_pattern}')
  spec = features.raw_feature_spec([features.MOVIE_TITLE, features.MOVIE_GENRES])
  genres: Dict[str, set] = {}

  def parse(records):
    movies = tf.io.parse_example(records, spec)
    return movies[features.MOVIE_TITLE], tf.sparse.to_dense(movies[features.MOVIE_GENRES],
                                                            default_value=-1)

  for batch_titles, batch_genres in tf.data.TFRecordDataset(
      files, compression_type='GZIP').batch(8192).map(parse).as_numpy_iterator():
    for title, ids in zip(batch_titles, batch_genres):
      genres.setdefault(title.decode(), set()).update(int(i) for i in ids if i >= 0)
  titles = sorted(genres)
  return titles, [sorted(genres[title]) for title in titles]


def read_vocabularies(tft_output: tft.TFTransformOutput, catalog_files: str) -> Vocabularies:
  """Reads the catalog's titles and genres and the sizes of Transform's vocabularies.

  Args:
    tft_output: Transform's output.
    catalog_files: a glob pattern of the catalog split's gzipped TFRecords.

  Returns:
    The Vocabularies the towers are built for.
  """
  spec = tft_output.transformed_feature_spec()
  titles, title_genres = read_catalog_titles_and_genres(catalog_files)
  buckets = tft_output.num_buckets_for_transformed_feature
  return Vocabularies(
      num_users=buckets(features.USER_INDEX),
      num_timestamp_buckets=buckets(features.TIMESTAMP_BUCKET),
      titles=titles, title_genres=title_genres,
      title_tokens=[token.decode() for token in
                    tft_output.vocabulary_by_name(features.TITLE_TOKEN_VOCABULARY)],
      user_feature_buckets={name: buckets(name) for name in features.USER_FEATURES.values()
                            if name in spec})


def load_training_inputs(tft_output: tft.TFTransformOutput, train_files: Sequence[str],
                         eval_files: Sequence[str], catalog_files: str, config: TrainingConfig
                         ) -> Tuple[Vocabularies, TrainInput, Dict[str, np.ndarray]]:
  """Reads all the Trainer reads.

  Args:
    tft_output: Transform's output.
    train_files, eval_files: glob patterns of the transformed train and eval examples.
    catalog_files: a glob pattern of the catalog split's examples.
    config: the training settings (their input mode and memory budget).

  Returns:
    (vocabularies, train, eval): train in memory or TrainFiles to stream (by the number of
    examples and the configuration), eval in memory.
  """
  spec = tft_output.transformed_feature_spec()
  # Counting reads every file once: only when the choice depends on the size.
  count = count_examples(train_files) if config.input_mode == 'auto' else 0
  train = (load_transformed(train_files, spec) if choose_input_mode(config, count) == 'memory'
           else TrainFiles(list(train_files), spec))
  return read_vocabularies(tft_output, catalog_files), train, load_transformed(eval_files, spec)


def sample_rows(columns: Dict[str, np.ndarray], size: int, seed: int) -> Dict[str, np.ndarray]:
  """A fixed, seeded sample of `size` rows (in their order), or every row when size is 0
  or not smaller."""
  rows = len(next(iter(columns.values())))
  if not size or rows <= size:
    return columns
  keep = np.sort(np.random.default_rng(seed).choice(rows, size, replace=False))
  return {name: values[keep] for name, values in columns.items()}


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


def in_memory_dataset(columns: Dict[str, np.ndarray], batch_size: int,
                      seed: int) -> tf.data.Dataset:
  """Batches of the rows of `columns`, in a new seeded order every epoch.

  Each batch's rows are gathered by row numbers: shuffling the rows themselves took three
  times the input pipeline's time.
  """
  num_rows = len(next(iter(columns.values())))
  tensors = {name: tf.constant(values) for name, values in columns.items()}
  return (shuffled_row_numbers(num_rows, batch_size, seed)
          .map(lambda index: {name: tf.gather(values, index)
                              for name, values in tensors.items()})
          .prefetch(tf.data.AUTOTUNE))


def _records(train: TrainFiles, shuffle_seed: Optional[int]) -> tf.data.Dataset:
  """The files' records; with a seed, the files in a new order each pass, endlessly."""
  files = _files(train.file_patterns)
  names = tf.data.Dataset.from_tensor_slices(files)
  if shuffle_seed is not None:  # and endless: Keras counts the steps of an epoch
    names = names.shuffle(len(files), seed=shuffle_seed,
                          reshuffle_each_iteration=True).repeat()
  return names.interleave(
      lambda name: tf.data.TFRecordDataset(name, compression_type='GZIP'),
      cycle_length=min(len(files), 4), num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=True)


def _parse(train: TrainFiles, records: tf.Tensor,
           names: Sequence[str]) -> Dict[str, tf.Tensor]:
  parsed = tf.io.parse_example(records, {name: train.feature_spec[name] for name in names})
  return {name: tf.reshape(parsed[name], [-1]) for name in names}


def streamed_dataset(train: TrainFiles, query_features: Sequence[str],
                     title_lookup: tf.keras.layers.StringLookup,
                     config: TrainingConfig) -> tf.data.Dataset:
  """Batches of the training examples read from their files, endlessly (Keras is told the
  steps of an epoch): the files in a new order each pass, their records through a bounded
  shuffle buffer, parsed a batch at a time.

  Args:
    train: the files.
    query_features: the query tower's features, read as they are.
    title_lookup: the titles' lookup; the batches hold the title's position in it
      (features.TITLE_INDEX).
    config: the batch size, the shuffle buffer and the seed.
  """
  def columns(records):
    parsed = _parse(train, records, (*query_features, features.MOVIE_TITLE))
    batch = {name: parsed[name] for name in query_features}
    batch[features.TITLE_INDEX] = title_lookup(parsed[features.MOVIE_TITLE])
    return batch

  return (_records(train, shuffle_seed=config.seed)
          .shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
          .batch(config.batch_size)
          .map(columns, num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE))


def count_streamed_titles(train: TrainFiles, title_lookup: tf.keras.layers.StringLookup,
                          num_titles: int) -> np.ndarray:
  """Training ratings of each of the catalog's `num_titles` titles (in lookup order),
  counted in one pass over the files; raises if a title is outside the catalog."""
  size = num_titles + 1  # with "unknown" at 0
  counts = _records(train, shuffle_seed=None).batch(1 << 16).map(
      lambda records: tf.math.bincount(
          tf.cast(title_lookup(_parse(train, records, [features.MOVIE_TITLE])[
              features.MOVIE_TITLE]), tf.int32),
          minlength=size, maxlength=size, dtype=tf.int64)
  ).reduce(tf.zeros([size], tf.int64), lambda total, batch: total + batch).numpy()
  if counts[0]:
    raise ValueError(f'{counts[0]} training examples have titles missing from the catalog')
  return counts[1:]
