"""The deep two-tower retrieval model of TFRS' "Building deep retrieval models" tutorial.

Query tower: user-id embedding, timestamp-bucket embedding and the timestamp's z-score,
then a dense stack. Candidate tower: title embedding plus the average of the title's word
embeddings, then the same dense stack. Both stacks put ReLU on every layer but the last.

Training uses in-batch negatives with a softmax over the batch's candidates, written with
sparse labels (the diagonal) rather than the dense identity matrix tfrs.tasks.Retrieval
builds: the same loss, a fraction of the cost. Optional, for quality: a temperature, the
sampling-probability (logQ) correction of popular candidates, and removal of accidental
hits (the same title elsewhere in the batch is not a negative). Or the exact softmax over
the whole catalog (`--softmax catalog`, or `auto` for catalogs up to a size): nothing
sampled, so nothing to correct.
"""
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from modules import features
from modules.hparams import TrainingConfig


def dense_stack(config: TrainingConfig, name: str) -> tf.keras.Sequential:
  """Dense layers of the configured sizes, ReLU on all but the last; with `normalize`, the
  output scaled to unit length (scores become cosines, sharpened by the temperature)."""
  sizes = config.layer_sizes
  layers = []
  for size in sizes[:-1]:
    layers.append(tf.keras.layers.Dense(size, activation='relu'))
    if config.dropout:
      layers.append(tf.keras.layers.Dropout(config.dropout))
  layers.append(tf.keras.layers.Dense(sizes[-1]))
  if config.normalize:
    layers.append(tf.keras.layers.UnitNormalization())
  return tf.keras.Sequential(layers, name=name)


class Tower(tf.keras.Model):
  """A tower whose `predict` runs its graph as written (see TwoTowerModel.train_step)."""

  @tf.autograph.experimental.do_not_convert
  def predict_step(self, data):
    return self(data, training=False)


class QueryTower(Tower):
  """Transformed query features (user index, timestamp bucket and z-score, and with
  `user_features` the user's feature indexes) to an embedding.

  Args:
    user_feature_buckets: {transformed user feature: vocabulary size + 1 for "unknown"} of
      the release's user features (empty for a release without them).
  """

  def __init__(self, num_users: int, num_timestamp_buckets: int, config: TrainingConfig,
               user_feature_buckets: Optional[Dict[str, int]] = None, **kwargs):
    super().__init__(**kwargs)
    self.num_users = num_users
    self.user_id_dropout = config.user_id_dropout
    self.user_embedding = tf.keras.layers.Embedding(num_users, config.embedding_dim)
    self.timestamp_embedding = tf.keras.layers.Embedding(num_timestamp_buckets,
                                                         config.embedding_dim)
    buckets = (user_feature_buckets or {}) if config.user_features else {}
    self.feature_embeddings = {
        name: tf.keras.layers.Embedding(size, config.embedding_dim, name=f'{name}_embedding')
        for name, size in sorted(buckets.items())}
    self.dense = dense_stack(config, 'query_dense')

  @property
  def feature_names(self) -> Tuple[str, ...]:
    """The transformed features `call` reads."""
    return (*features.QUERY_INPUTS, *self.feature_embeddings)

  def call(self, inputs: Dict[str, tf.Tensor], training=None) -> tf.Tensor:
    user = tf.reshape(inputs[features.USER_INDEX], [-1])
    if training and self.user_id_dropout:  # hidden ids train the unknown-user index
      hidden = tf.random.uniform(tf.shape(user)) < self.user_id_dropout
      user = tf.where(hidden, tf.cast(self.num_users - 1, user.dtype), user)
    z = tf.reshape(tf.cast(inputs[features.TIMESTAMP_Z], tf.float32), [-1, 1])
    parts = [self.user_embedding(user),
             self.timestamp_embedding(tf.reshape(inputs[features.TIMESTAMP_BUCKET], [-1])), z]
    parts += [embedding(tf.reshape(inputs[name], [-1]))
              for name, embedding in self.feature_embeddings.items()]
    return self.dense(tf.concat(parts, axis=1))

  def average_unknown(self) -> None:
    """Gives each "unknown" index that training never saw (the last of every vocabulary)
    the mean of the trained rows: an unknown user, or a request without a feature, is then
    queried as the average, not by a random initial vector. With user-id dropout the unknown
    user's row is trained, and kept."""
    tables = [embedding.embeddings for embedding in self.feature_embeddings.values()]
    if not self.user_id_dropout:
      tables.append(self.user_embedding.embeddings)
    for table in tables:
      table[-1].assign(tf.reduce_mean(table[:-1], axis=0))


_YEAR = re.compile(r'\((\d{4})\)')


def release_year(title: str) -> Optional[int]:
  """The year of a "Title (Year)" title (the last four-digit parenthesis), or None."""
  years = _YEAR.findall(title)
  return int(years[-1]) if years else None


# embed_titles' inputs: titles, and each title's genre ids (TFDS', padded with -1).
TITLES_AND_GENRES = (tf.TensorSpec([None], tf.string, name='titles'),
                     tf.TensorSpec([None, None], tf.int64, name='genres'))


class CandidateTower(Tower):
  """Movie titles to embeddings: title embedding plus the mean of its word embeddings.

  With `movie_features`, also the mean of its genres' embeddings and an embedding of its
  release year, which `call` and `embed_indices` read from the catalog the tower was built
  for (a title outside it has neither there).
  `call` takes title strings (an unknown one embeds by its words alone);
  `embed_indices` takes positions in the catalog's title lookup and reads each title's
  words from a table built once, so that a training step runs no string operations;
  `embed_titles` takes titles with their genres, so that a title outside the catalog embeds
  by its words, genres and year (a catalog refresh: modules/catalog_refresh.py). A title
  the lookup does not know shares its one "unknown" index (0), whose embedding
  `average_unknown` sets to the mean of the trained titles'.
  """

  def __init__(self, titles: Sequence[str], title_tokens: Sequence[str], config: TrainingConfig,
               title_genres: Optional[Sequence[Sequence[int]]] = None, **kwargs):
    super().__init__(**kwargs)
    self.movie_features = config.movie_features
    if self.movie_features:
      if title_genres is None or len(title_genres) != len(titles):
        raise ValueError('movie features need the genres of every title')
      num_genres = 1 + max((g for genres in title_genres for g in genres), default=0)
      table = np.zeros((len(titles) + 1, num_genres), np.float32)  # row 0: unknown title
      for row, genres in enumerate(title_genres, start=1):
        table[row, list(genres)] = 1.0 / max(len(genres), 1)
      self.catalog_genres = tf.constant(table)
      self.genre_embedding = tf.keras.layers.Dense(config.embedding_dim, use_bias=False)
      years = [release_year(title) for title in titles]
      known = sorted({year for year in years if year is not None})
      self.catalog_years = tf.constant(
          [0] + [known.index(year) + 1 if year is not None else 0 for year in years])
      # The years of year_embedding's rows, after row 0 (no year, or one training never saw).
      self.known_years = tf.constant([-1] + known, tf.int64)
      self.year_embedding = tf.keras.layers.Embedding(len(known) + 1, config.embedding_dim)
    self.title_lookup = tf.keras.layers.StringLookup(vocabulary=list(titles), mask_token=None)
    self.title_embedding = tf.keras.layers.Embedding(len(titles) + 1, config.embedding_dim)
    self.token_lookup = tf.keras.layers.StringLookup(vocabulary=list(title_tokens),
                                                     mask_token=None)
    self.token_embedding = tf.keras.layers.Embedding(len(title_tokens) + 1,
                                                     config.embedding_dim)
    self.dense = dense_stack(config, 'candidate_dense')
    # Word ids of each lookup position (0, "unknown title", has none), padded with 0.
    words = self.token_lookup(features.title_tokens(tf.constant([''] + list(titles))))
    self.catalog_words = tf.constant(words.to_tensor().numpy())
    self.catalog_word_counts = tf.constant(words.row_lengths().numpy())

  def _embed(self, title_index: tf.Tensor, word_embeddings: tf.Tensor, word_counts: tf.Tensor,
             genre_weights: Optional[tf.Tensor] = None,
             year_index: Optional[tf.Tensor] = None) -> tf.Tensor:
    """The dense stack over [title embedding, mean word embedding (0 without words),
    and with movie features the mean genre embedding and the year embedding]; the genres'
    weights and the years' rows are the catalog's unless given."""
    words = tf.reduce_sum(word_embeddings, axis=1) / tf.maximum(
        tf.cast(word_counts, tf.float32)[:, None], 1.0)
    parts = [self.title_embedding(title_index), words]
    if self.movie_features:
      if genre_weights is None:
        genre_weights = tf.gather(self.catalog_genres, title_index)
      if year_index is None:
        year_index = tf.gather(self.catalog_years, title_index)
      parts.append(self.genre_embedding(genre_weights))
      parts.append(self.year_embedding(year_index))
    return self.dense(tf.concat(parts, axis=1))

  def call(self, titles: tf.Tensor) -> tf.Tensor:
    titles = tf.reshape(titles, [-1])
    words = self.token_embedding(self.token_lookup(features.title_tokens(titles)))
    return self._embed(self.title_lookup(titles), words, words.row_lengths())

  @tf.function(input_signature=TITLES_AND_GENRES)
  def embed_titles(self, titles: tf.Tensor, genres: tf.Tensor) -> tf.Tensor:
    """The embeddings of any titles, by their words and, with movie features, the genres
    given and the year in the title; a title of the catalog with its catalog genres embeds
    as `call` embeds it. Saved with the tower, so that its SavedModel embeds new titles."""
    words = self.token_embedding(self.token_lookup(features.title_tokens(titles)))
    if not self.movie_features:
      return self._embed(self.title_lookup(titles), words, words.row_lengths())
    return self._embed(self.title_lookup(titles), words, words.row_lengths(),
                       self._genre_weights(genres), self._year_index(titles))

  def _genre_weights(self, genres: tf.Tensor) -> tf.Tensor:
    """Each row's genres as the catalog's table holds them: 1 / (its genres) for each; a
    genre no catalog title had (beyond the table) has no embedding and is left out."""
    depth = tf.shape(self.catalog_genres)[1]
    known = tf.logical_and(genres >= 0, genres < tf.cast(depth, genres.dtype))
    hot = tf.reduce_max(tf.one_hot(tf.where(known, genres, -1), depth), axis=1)
    return hot / tf.maximum(tf.reduce_sum(hot, axis=1, keepdims=True), 1.0)

  def _year_index(self, titles: tf.Tensor) -> tf.Tensor:
    """year_embedding's row of each title's year (release_year's: the last "(dddd)"); 0
    for a title without one, or with a year no catalog title had."""
    has_year = tf.strings.regex_full_match(titles, r'.*\(\d{4}\).*')
    year = tf.strings.to_number(tf.where(
        has_year, tf.strings.regex_replace(titles, r'^.*\((\d{4})\).*$', r'\1'), '-1'),
        tf.int64)
    return tf.argmax(tf.cast(tf.equal(year[:, None], self.known_years[None, :]), tf.int32),
                     axis=1)

  def average_unknown(self) -> None:
    """Gives the "unknown title" index (0), which training never saw, the mean of the
    trained titles' embeddings: a title outside the catalog is then embedded as an average
    title with its own words (and genres and year), not by a random initial vector."""
    table = self.title_embedding.embeddings
    table[0].assign(tf.reduce_mean(table[1:], axis=0))

  def embed_indices(self, title_index: tf.Tensor) -> tf.Tensor:
    counts = tf.gather(self.catalog_word_counts, title_index)
    mask = tf.sequence_mask(counts, tf.shape(self.catalog_words)[1], dtype=tf.float32)
    words = self.token_embedding(tf.gather(self.catalog_words, title_index)) * mask[..., None]
    return self._embed(title_index, words, counts)


class SideBySide(Tower):
  """Several trained towers of one side as one: their embeddings side by side. Against the
  other side's SideBySide, a score is the sum of each pair's scores (an ensemble that a
  dot-product index serves as it serves one model)."""

  def __init__(self, towers: Sequence[Tower], **kwargs):
    super().__init__(**kwargs)
    self.towers = list(towers)

  @property
  def feature_names(self) -> Tuple[str, ...]:
    """The query features any of the towers reads (query towers)."""
    return tuple(dict.fromkeys(name for tower in self.towers for name in tower.feature_names))

  def call(self, inputs, training=None) -> tf.Tensor:
    return tf.concat([tower(inputs, training=training) for tower in self.towers], axis=1)

  def average_unknown(self) -> None:
    for tower in self.towers:
      tower.average_unknown()


class CandidatesSideBySide(SideBySide):
  """Candidate towers side by side, which also embed titles with their genres."""

  @tf.function(input_signature=TITLES_AND_GENRES)
  def embed_titles(self, titles: tf.Tensor, genres: tf.Tensor) -> tf.Tensor:
    """CandidateTower.embed_titles of each tower, side by side."""
    return tf.concat([tower.embed_titles(titles, genres) for tower in self.towers], axis=1)


class TwoTowerModel(tf.keras.Model):
  """Both towers and the training loss: the in-batch softmax, or the exact one over the
  catalog (`exact_softmax`, from the config's softmax and the catalog's size)."""

  def __init__(self, query_tower: QueryTower, candidate_tower: CandidateTower,
               config: TrainingConfig, title_log_probability: Optional[tf.Tensor] = None,
               **kwargs):
    """
    Args:
      title_log_probability: log of each candidate-title index's share of training ratings
        (indexes of candidate_tower.title_lookup); needed for the logQ correction.
    """
    super().__init__(**kwargs)
    self.query_tower = query_tower
    self.candidate_tower = candidate_tower
    self.config = config
    if config.logq_correction and title_log_probability is None:
      raise ValueError('the logQ correction needs each title\'s sampling probability')
    self.title_log_probability = title_log_probability
    # The lookup's positions less its "unknown title" (position 0).
    self.num_titles = candidate_tower.title_lookup.vocabulary_size() - 1
    self.exact_softmax = config.uses_catalog_softmax(self.num_titles)
    self.loss_tracker = tf.keras.metrics.Mean(name='loss')

  @property
  def metrics(self) -> List[tf.keras.metrics.Metric]:
    return [self.loss_tracker]

  def in_batch_logits(self, inputs: Dict[str, tf.Tensor], training: bool):
    """Scores of each query against the batch's candidates, and each query's own column.

    Inputs hold TITLE_INDEX, positions in the candidate tower's title lookup. With
    `unique_candidates`, each title of the batch is one column (the softmax shrinks to the
    distinct titles, and a title's repeats are no longer its own negatives); the logQ
    correction then uses the probability that a title is in the batch at all. With
    the exact (catalog) softmax, the columns are the whole catalog, in lookup order.
    """
    title_index = tf.reshape(inputs[features.TITLE_INDEX], [-1])
    queries = self.query_tower(inputs, training=training)
    if self.exact_softmax:
      candidates = self.candidate_tower.embed_indices(tf.range(1, self.num_titles + 1))
      logits = tf.matmul(queries, candidates, transpose_b=True) / self.config.temperature
      return logits, title_index - 1
    if self.config.unique_candidates:
      columns, labels = tf.unique(title_index)
    else:
      columns, labels = title_index, tf.range(tf.shape(title_index)[0])
    candidates = self.candidate_tower.embed_indices(columns)
    logits = tf.matmul(queries, candidates, transpose_b=True) / self.config.temperature
    if self.config.logq_correction:
      log_q = tf.gather(self.title_log_probability, columns)
      if self.config.unique_candidates:  # log P(in a batch of n) = log(1 - (1 - q)^n)
        batch_size = tf.cast(tf.shape(title_index)[0], log_q.dtype)
        log_q = tf.math.log(-tf.math.expm1(batch_size * tf.math.log1p(-tf.exp(log_q))))
      logits -= log_q[None, :]
    if self.config.remove_accidental_hits and not self.config.unique_candidates:
      same_title = tf.equal(title_index[:, None], title_index[None, :])
      off_diagonal = tf.logical_not(tf.cast(tf.eye(tf.shape(logits)[0]), tf.bool))
      logits += tf.cast(tf.logical_and(same_title, off_diagonal), logits.dtype) * -1e9
    return logits, labels

  def compute_loss_value(self, inputs: Dict[str, tf.Tensor], training: bool) -> tf.Tensor:
    """Softmax cross-entropy of each query against the batch's candidates, summed as TFRS.

    Written as logsumexp minus the own column's logit: the same value and gradient as
    tf.nn.sparse_softmax_cross_entropy_with_logits, in about half its time on a CPU.
    """
    logits, labels = self.in_batch_logits(inputs, training)
    own = tf.gather(logits, labels[:, None], batch_dims=1)[:, 0]
    return tf.reduce_sum(tf.reduce_logsumexp(logits, axis=1) - own)

  # Nothing in the step branches on a tensor's value, so AutoGraph need not rewrite it and
  # every Keras layer it calls: that rewriting took most of the first epoch (about 50 s of
  # 60 on MovieLens 100k; docs/model.md, "Training speed").
  @tf.autograph.experimental.do_not_convert
  def train_step(self, inputs):
    with tf.GradientTape() as tape:
      loss = self.compute_loss_value(inputs, training=True)
    variables = self.trainable_variables
    self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    self.loss_tracker.update_state(loss)
    return {'loss': self.loss_tracker.result()}
