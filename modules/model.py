"""The deep two-tower retrieval model of TFRS' "Building deep retrieval models" tutorial.

Query tower: user-id embedding, timestamp-bucket embedding and the timestamp's z-score,
then a dense stack. Candidate tower: title embedding plus the average of the title's word
embeddings, then the same dense stack. Both stacks put ReLU on every layer but the last.

Training uses in-batch negatives with a softmax over the batch's candidates, written with
sparse labels (the diagonal) rather than the dense identity matrix tfrs.tasks.Retrieval
builds: the same loss, a fraction of the cost. Optional, for quality: a temperature, the
sampling-probability (logQ) correction of popular candidates, and removal of accidental
hits (the same title elsewhere in the batch is not a negative).
"""
import dataclasses
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from modules import features as f


@dataclasses.dataclass
class ModelConfig:
  layer_sizes: Sequence[int] = (64, 32)
  embedding_dim: int = 32
  temperature: float = 1.0
  logq_correction: bool = False
  remove_accidental_hits: bool = False


def dense_stack(layer_sizes: Sequence[int], name: str) -> tf.keras.Sequential:
  """Dense layers of the given sizes, ReLU on all but the last."""
  layers = [tf.keras.layers.Dense(size, activation='relu') for size in layer_sizes[:-1]]
  layers.append(tf.keras.layers.Dense(layer_sizes[-1]))
  return tf.keras.Sequential(layers, name=name)


class QueryTower(tf.keras.Model):
  """Transformed query features (user index, timestamp bucket and z-score) to an embedding."""

  def __init__(self, num_users: int, num_timestamp_buckets: int, config: ModelConfig,
               **kwargs):
    super().__init__(**kwargs)
    self.user_embedding = tf.keras.layers.Embedding(num_users, config.embedding_dim)
    self.timestamp_embedding = tf.keras.layers.Embedding(num_timestamp_buckets,
                                                         config.embedding_dim)
    self.dense = dense_stack(config.layer_sizes, 'query_dense')

  def call(self, features: Dict[str, tf.Tensor]) -> tf.Tensor:
    z = tf.reshape(tf.cast(features[f.TIMESTAMP_Z], tf.float32), [-1, 1])
    return self.dense(tf.concat([
        self.user_embedding(tf.reshape(features[f.USER_INDEX], [-1])),
        self.timestamp_embedding(tf.reshape(features[f.TIMESTAMP_BUCKET], [-1])),
        z], axis=1))


class CandidateTower(tf.keras.Model):
  """Movie titles (strings) to embeddings: title embedding plus mean word embedding."""

  def __init__(self, titles: Sequence[str], title_tokens: Sequence[str], config: ModelConfig,
               **kwargs):
    super().__init__(**kwargs)
    self.title_lookup = tf.keras.layers.StringLookup(vocabulary=list(titles), mask_token=None)
    self.title_embedding = tf.keras.layers.Embedding(len(titles) + 1, config.embedding_dim)
    self.token_lookup = tf.keras.layers.StringLookup(vocabulary=list(title_tokens),
                                                     mask_token=None)
    self.token_embedding = tf.keras.layers.Embedding(len(title_tokens) + 1,
                                                     config.embedding_dim)
    self.dense = dense_stack(config.layer_sizes, 'candidate_dense')

  def call(self, titles: tf.Tensor) -> tf.Tensor:
    titles = tf.reshape(titles, [-1])
    tokens = self.token_embedding(self.token_lookup(f.title_tokens(titles)))
    # Mean of the words, 0 for a title without any.
    words = tf.reduce_sum(tokens, axis=1) / tf.maximum(
        tf.cast(tokens.row_lengths(), tf.float32)[:, None], 1.0)
    return self.dense(tf.concat([self.title_embedding(self.title_lookup(titles)), words],
                                axis=1))


class TwoTowerModel(tf.keras.Model):
  """Both towers and the in-batch softmax loss; `catalog_titles` are the candidates."""

  def __init__(self, query_tower: QueryTower, candidate_tower: CandidateTower,
               config: ModelConfig, title_log_probability: Optional[tf.Tensor] = None,
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
    self.loss_tracker = tf.keras.metrics.Mean(name='loss')

  @property
  def metrics(self) -> List[tf.keras.metrics.Metric]:
    return [self.loss_tracker]

  def in_batch_logits(self, features: Dict[str, tf.Tensor], training: bool) -> tf.Tensor:
    queries = self.query_tower(features, training=training)
    candidates = self.candidate_tower(features[f.MOVIE_TITLE], training=training)
    logits = tf.matmul(queries, candidates, transpose_b=True) / self.config.temperature
    if self.config.logq_correction or self.config.remove_accidental_hits:
      title_index = self.candidate_tower.title_lookup(tf.reshape(features[f.MOVIE_TITLE], [-1]))
      if self.config.logq_correction:
        logits -= tf.gather(self.title_log_probability, title_index)[None, :]
      if self.config.remove_accidental_hits:
        same_title = tf.equal(title_index[:, None], title_index[None, :])
        off_diagonal = tf.logical_not(tf.cast(tf.eye(tf.shape(logits)[0]), tf.bool))
        logits += tf.cast(tf.logical_and(same_title, off_diagonal), logits.dtype) * -1e9
    return logits

  def compute_loss_value(self, features: Dict[str, tf.Tensor], training: bool) -> tf.Tensor:
    """Softmax cross-entropy of each query against the batch's candidates, summed as TFRS."""
    logits = self.in_batch_logits(features, training)
    labels = tf.range(tf.shape(logits)[0])
    return tf.reduce_sum(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))

  def train_step(self, features):
    with tf.GradientTape() as tape:
      loss = self.compute_loss_value(features, training=True)
    variables = self.trainable_variables
    self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    self.loss_tracker.update_state(loss)
    return {'loss': self.loss_tracker.result()}

  def test_step(self, features):
    self.loss_tracker.update_state(self.compute_loss_value(features, training=False))
    return {'loss': self.loss_tracker.result()}


def top_k_accuracy(query_embeddings: np.ndarray, true_index: np.ndarray,
                   candidate_embeddings: np.ndarray, ks: Sequence[int]) -> Dict[int, float]:
  """Factorized top-K accuracy over the whole catalog, as TFRS' FactorizedTopK counts it.

  A held-out rating is a hit at K when fewer than K catalog titles score strictly higher
  than its own title (ties count as hits, as in tf.math.in_top_k).
  """
  hits = {k: 0 for k in ks}
  for start in range(0, len(query_embeddings), 4096):
    scores = query_embeddings[start:start + 4096] @ candidate_embeddings.T
    own = scores[np.arange(len(scores)), true_index[start:start + 4096]]
    rank = (scores > own[:, None]).sum(axis=1)
    for k in ks:
      hits[k] += int((rank < k).sum())
  return {k: hits[k] / len(query_embeddings) for k in ks}
