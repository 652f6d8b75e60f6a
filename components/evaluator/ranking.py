"""The evaluation's core: every figure of evaluation.json, from arrays and a served model.

The eval split's ratings are scored against the model's whole catalog through the
SavedModel's own signatures (what is measured is what ships), ranked by modules.metrics
(the one definition of top-K and of the per-user Recall@K and NDCG@K), as listed and with
each user's training titles removed, beside the most-popular list, within each slice of
users, and for the users never seen in training. No TFX here: the executor reads the
artifacts and writes the results; this module is tested directly on small arrays and a small
SavedModel.
"""
import dataclasses
import functools
import logging
import math
import time
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Set, Tuple

import numpy as np
import tensorflow as tf
from tabulate import tabulate

from components.evaluator import gate, tables
from data import features
from modules import metrics, serving
from shared import names

logger = logging.getLogger(f'{names.LOGGER}.evaluator')

# The user features the evaluation slices by (those the release has), and how each labels a
# rating by its raw value: the feature registry's slice labels (data/features.py).
SLICES: Dict[str, Callable[[Any], str]] = {
    feature.name: functools.partial(features.slice_label, feature) for feature in features.SLICED}
# The slice every release has: each rating's user's training ratings, bucketed.
ACTIVITY_SLICE = 'user_training_ratings'
UNKNOWN_USER = ''  # not an id of any user: the model's unknown-user embedding
# The features read of each split: the training ratings only say who rated what.
TRAIN_FEATURES = (features.USER_ID, features.MOVIE_TITLE)
EVAL_FEATURES = (features.USER_ID, features.MOVIE_TITLE, features.TIMESTAMP)


def eval_features(available: Iterable[str]) -> Set[str]:
  """The features to read of each eval rating.

  Args:
    available: the features the release's examples have (its schema's).

  Returns:
    EVAL_FEATURES, and of the slices' and the serving requests' user features
    (serving.USER_FEATURE_SPECS) those available.
  """
  available = set(available)
  return {*EVAL_FEATURES, *(name for name in [*SLICES, *serving.USER_FEATURE_SPECS]
                            if name in available)}


@dataclasses.dataclass
class EvalRatings:
  """The held-out ratings, and what each user rated in training."""
  user_id: np.ndarray
  timestamp: np.ndarray
  title: np.ndarray
  slices: Dict[str, np.ndarray]  # slice name -> each rating's label
  train_user_id: np.ndarray
  train_title: np.ndarray
  # The user features a request can carry (serving.USER_FEATURE_SPECS), of each rating.
  user_features: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

  @classmethod
  def from_examples(cls, train: Dict[str, np.ndarray],
                    eval_: Dict[str, np.ndarray]) -> 'EvalRatings':
    """The eval ratings labelled by every slice they have the feature of.

    Args:
      train: the training split's TRAIN_FEATURES, an array each (one value a rating).
      eval_: the eval split's eval_features(), an array each.

    Returns:
      The ratings of `eval_`, labelled by each of SLICES present and by ACTIVITY_SLICE (the
      user's ratings in `train`, bucketed), with the serving requests' features present.
    """
    labels = {name: np.array([label(value) for value in eval_[name]], dtype=object)
              for name, label in SLICES.items() if name in eval_}
    users, counts = np.unique(train[features.USER_ID], return_counts=True)
    activity = dict(zip(users.tolist(), counts.tolist()))
    labels[ACTIVITY_SLICE] = np.array([metrics.activity_bucket(activity.get(user, 0))
                                       for user in eval_[features.USER_ID].tolist()],
                                      dtype=object)
    return cls(eval_[features.USER_ID], eval_[features.TIMESTAMP], eval_[features.MOVIE_TITLE],
               labels, train[features.USER_ID], train[features.MOVIE_TITLE],
               {name: eval_[name] for name in serving.USER_FEATURE_SPECS if name in eval_})

  def subset(self, rows: np.ndarray) -> 'EvalRatings':
    """The eval ratings of `rows` (a mask or indexes), with all of the training ratings."""
    return EvalRatings(self.user_id[rows], self.timestamp[rows], self.title[rows],
                       {name: labels[rows] for name, labels in self.slices.items()},
                       self.train_user_id, self.train_title,
                       {name: values[rows] for name, values in self.user_features.items()})

  def unseen_users(self) -> np.ndarray:
    """A mask of the eval ratings whose user has no training rating (read from the activity
    slice, which counted every user's training ratings)."""
    return self.slices[ACTIVITY_SLICE] == metrics.activity_bucket(0)

  def unknown_users(self) -> np.ndarray:
    """UNKNOWN_USER for each rating: the queries of a user the model has never seen."""
    return np.full(len(self.user_id), UNKNOWN_USER, dtype=object)


class ServedModel:
  """An exported model as a serving system sees it: the SavedModel and its catalog."""

  def __init__(self, directory: str):
    """Loads a served model.

    Args:
      directory: the serving SavedModel's directory (the Model artifact's Format-Serving),
        with the catalog's titles and embeddings in assets.extra/ (serving.export).
    """
    self.directory = directory
    self.titles, self.candidates = serving.read_catalog(directory)
    self._loaded = tf.saved_model.load(directory)  # its signatures need it alive
    self._embed = self._loaded.signatures['embed']
    # A model trained without user features, or on a release without them, has no such
    # signature: queried by id and time alone.
    self._embed_with_features = self._loaded.signatures.get('embed_with_features')
    self._position = {title.encode(): index for index, title in enumerate(self.titles)}

  def query_embeddings(self, user_id: np.ndarray, timestamp: np.ndarray,
                       user_features: Optional[Dict[str, np.ndarray]] = None,
                       batch_size: int = 8192) -> np.ndarray:
    """Embeddings of queries, batch by batch through the model's signatures.

    Args:
      user_id, timestamp: [queries] each query's user and time.
      user_features: [queries] arrays of the request features; used when given and the
        model takes them (embed_with_features), else the query is by id and time (embed).
      batch_size: queries sent to the signature at a time.

    Returns:
      [queries, dimensions] the query embeddings.
    """
    signature, inputs = self._embed, {features.USER_ID: user_id, features.TIMESTAMP: timestamp}
    if user_features and self._embed_with_features is not None:
      signature = self._embed_with_features
      inputs.update(user_features)
    return np.concatenate([
        signature(**{name: tf.constant(values[start:start + batch_size])
                     for name, values in inputs.items()})['embedding'].numpy()
        for start in range(0, len(user_id), batch_size)])

  def catalog_index(self, titles: np.ndarray) -> np.ndarray:
    """Each title's (bytes) position in this model's catalog; -1 outside it."""
    return np.array([self._position.get(title, -1) for title in titles.tolist()], np.int64)


class CatalogIndexes(NamedTuple):
  """Eval ratings under one model's catalog, as the rankings need them."""
  truth: np.ndarray         # [eval ratings] each title's catalog index, -1 outside it
  seen: np.ndarray          # [eval ratings] its user's training titles (metrics.seen_titles)
  train_counts: np.ndarray  # [titles] training ratings of each catalog title

  def subset(self, rows: np.ndarray) -> 'CatalogIndexes':
    """The indexes of the eval ratings of `rows`, as EvalRatings.subset takes them."""
    return CatalogIndexes(self.truth[rows], self.seen[rows], self.train_counts)


def catalog_indexes(model: ServedModel, ratings: EvalRatings) -> CatalogIndexes:
  """The ratings' titles and their users' training titles as indexes of the model's catalog.

  Args:
    model: the model whose catalog indexes the titles.
    ratings: the eval ratings, with every training rating (a pass over all of them).

  Returns:
    The truth, the seen titles and the training counts of the catalog's titles.
  """
  train_index = model.catalog_index(ratings.train_title)
  return CatalogIndexes(
      truth=model.catalog_index(ratings.title),
      seen=metrics.seen_titles(ratings.train_user_id, train_index, ratings.user_id),
      train_counts=np.bincount(train_index[train_index >= 0], minlength=len(model.titles)))


# Ranks of the truth, [ratings] each: as listed, and with the user's seen titles removed.
Ranks = Tuple[np.ndarray, np.ndarray]


def rank_model(model: ServedModel, ratings: EvalRatings, indexes: CatalogIndexes,
               user_id: Optional[np.ndarray] = None, with_features: bool = True) -> Ranks:
  """Ranks of the truth under a model, queried as a serving request would be.

  Args:
    model: the served model.
    ratings: the eval ratings; each is a query at its own timestamp.
    indexes: catalog_indexes(model, ratings).
    user_id: the ids to query by instead of the ratings' own (UNKNOWN_USER: the mean user).
    with_features: query with the user's features when the model takes them (the model's
      validation used them too).

  Returns:
    Ranks: as listed, and with the user's seen titles removed.
  """
  queries = model.query_embeddings(ratings.user_id if user_id is None else user_id,
                                   ratings.timestamp,
                                   ratings.user_features if with_features else None)
  return metrics.ranks_listed_and_unseen(metrics.embedding_scores(queries, model.candidates),
                                         indexes.truth, indexes.seen)


def rank_popularity(indexes: CatalogIndexes) -> Ranks:
  """Ranks of the truth when everyone gets the titles in order of training ratings.

  Args:
    indexes: the eval ratings under the catalog the list is made of.

  Returns:
    Ranks: as listed, and with the user's seen titles removed.
  """
  return (metrics.popularity_ranks(indexes.train_counts, indexes.truth),
          metrics.popularity_ranks(indexes.train_counts, indexes.truth, indexes.seen))


def _timed(rankings: Dict[str, Callable[[], Any]], what: str) -> Dict[str, Any]:
  """Each ranking's result, saying what is ranked and how long each took: at 25M ratings
  each takes minutes."""
  logger.info('Ranking %s: %s', what, ', '.join(rankings))
  ranked = {}
  for name, rank in rankings.items():
    start = time.monotonic()
    ranked[name] = rank()
    logger.info('  %s ranked in %.1f s', name, time.monotonic() - start)
  return ranked


def evaluate(ratings: EvalRatings, model: ServedModel,
             baseline: Optional[ServedModel] = None) -> Dict[str, Any]:
  """Every figure of evaluation.json but the models' artifacts and the gate.

  Args:
    ratings: the eval split's ratings, with every training rating.
    model: the model evaluated.
    baseline: the latest blessed model, evaluated again on the same ratings with its own
      catalog; None when there is none.

  Returns:
    num_eval_ratings, num_eval_users, num_candidates, top_k and top_k_unseen (ranking name
    -> K -> accuracy: model, popularity, unknown_user, and baseline_model with a baseline),
    per_user_unseen (k, and rankings: ranking name -> recall and ndcg at k, per user with
    seen titles removed, metrics.per_user_recall_ndcg: RecBole's figures),
    slices (slice name -> top-GATE_K rows, metrics.sliced_top_k) and, when some eval users
    have no training rating, cold_start (cold_start()'s).
  """
  indexes = catalog_indexes(model, ratings)
  rankings = {'model': lambda: rank_model(model, ratings, indexes),
              'popularity': lambda: rank_popularity(indexes),
              'unknown_user': lambda: rank_model(model, ratings, indexes, ratings.unknown_users(),
                                                 with_features=False)}
  if baseline is not None:
    rankings['baseline_model'] = lambda: rank_model(baseline, ratings,
                                                    catalog_indexes(baseline, ratings))
  ranked = _timed(rankings, f'{len(ratings.title):,} eval ratings')
  report = {
      'num_eval_ratings': len(ratings.title),
      'num_eval_users': len(set(ratings.user_id.tolist())),
      'num_candidates': len(model.titles),
      'top_k': {name: metrics.top_k(ranks[0]) for name, ranks in ranked.items()},
      'top_k_unseen': {name: metrics.top_k(ranks[1]) for name, ranks in ranked.items()},
      'per_user_unseen': {'k': metrics.PER_USER_K, 'rankings': {
          name: metrics.per_user_recall_ndcg(ratings.user_id, ratings.title, ranks[1])
          for name, ranks in ranked.items()}},
      'slices': {name: metrics.sliced_top_k(labels, {
          'model': ranked['model'][0], 'model_unseen': ranked['model'][1],
          'popularity': ranked['popularity'][0], 'popularity_unseen': ranked['popularity'][1]},
          k=names.GATE_K) for name, labels in ratings.slices.items()},
  }
  unseen = ratings.unseen_users()
  if unseen.any():
    report['cold_start'] = cold_start(ratings.subset(unseen), indexes.subset(unseen), model)
  return report


def eval_sample(ratings: EvalRatings, count: int, seed: int) -> Tuple[EvalRatings,
                                                                     Dict[str, Any]]:
  """A seeded sample of the eval ratings, which the model, the baseline and the popularity
  list are then all ranked on: the gate compares them on the same ratings.

  At 25M ratings ranking all 5 million eval ratings against 62,000 titles three times took
  the Evaluator 47 minutes (docs/scale.md); a sample of 250,000 leaves the gate's top-100
  a standard error of about 0.0008 (docs/evaluation.md, "A sample of the eval split").

  Args:
    ratings: the eval split's ratings, with every training rating.
    count: how many eval ratings to keep; 0, or at least as many as there are: all.
    seed: the sample's seed: the same seed and split give the same sample.

  Returns:
    (the sampled ratings, in the split's order, with all of the training ratings;
    evaluation.json's eval_sample: {'ratings', 'of', 'seed'}).
  """
  total = len(ratings.title)
  if not count or count >= total:
    return ratings, {'ratings': total, 'of': total, 'seed': None}
  rows = np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))
  return ratings.subset(rows), {'ratings': count, 'of': total, 'seed': seed}


def standard_error(accuracy: float, ratings: int) -> float:
  """The binomial standard error of a top-K accuracy over `ratings` eval ratings drawn at
  random, sqrt(p(1 - p) / n): how far a sample's figure may lie from the whole split's.
  (A user's ratings are not independent draws, so it is a floor.)"""
  return math.sqrt(accuracy * (1 - accuracy) / ratings) if ratings else float('nan')


def cold_start(ratings: EvalRatings, indexes: CatalogIndexes,
               model: ServedModel) -> Dict[str, Any]:
  """Top-K for eval users with no training rating (--holdout-users).

  Args:
    ratings: the eval ratings of those users.
    indexes: catalog_indexes(model, ratings).
    model: the model evaluated.

  Returns:
    num_ratings, num_users, and top_k (K -> accuracy) of the model queried with their
    features (model_with_features: their ids are unknown to it), as the mean user
    (mean_user: neither) and of the most-popular list (popularity).
  """
  ranked = {name: ranks[0] for name, ranks in _timed({
      'model_with_features': lambda: rank_model(model, ratings, indexes),
      'mean_user': lambda: rank_model(model, ratings, indexes, ratings.unknown_users(),
                                      with_features=False),
      'popularity': lambda: rank_popularity(indexes)},
      f'{len(ratings.title):,} eval ratings of users never seen in training').items()}
  return {'num_ratings': len(ratings.title), 'num_users': len(set(ratings.user_id.tolist())),
          'top_k': {name: metrics.top_k(ranks) for name, ranks in ranked.items()}}


def gate_checks(report: Dict[str, Any], min_top100: float, min_lift: float,
                max_regression: float, baseline_id: Optional[int] = None) -> List[gate.Check]:
  """The gate's checks on a report's top-GATE_K accuracy.

  Args:
    report: evaluate()'s.
    min_top100, min_lift, max_regression: the gate's thresholds (gate.checks).
    baseline_id: the baseline model's artifact id, when the report has one.

  Returns:
    gate.checks() on the model's, the most-popular list's and the baseline's figures.
  """
  top_k = report['top_k']
  baseline = top_k.get('baseline_model')
  return gate.checks(top_k['model'][names.GATE_KEY], top_k['popularity'][names.GATE_KEY],
                     min_top100, min_lift, max_regression,
                     baseline[names.GATE_KEY] if baseline else None, baseline_id)


def with_verdict(report: Dict[str, Any], checks: List[gate.Check], model: Dict[str, Any],
                 baseline: Optional[Dict[str, Any]]) -> Dict[str, Any]:
  """evaluation.json: a report, the models it is of, and the gate's verdict.

  Args:
    report: evaluate()'s.
    checks: gate_checks() of it.
    model, baseline: {'artifact_id', 'uri'} of each model's artifact; baseline None when
      there is none.

  Returns:
    The report with model, baseline_model and gate ({'blessed', 'checks'}) added.
  """
  return {**report, 'model': model, 'baseline_model': baseline,
          'gate': {'blessed': blessed(checks),
                   'checks': [dataclasses.asdict(check) for check in checks]}}


def blessed(checks: List[gate.Check]) -> bool:
  """Whether a model is blessed.

  Args:
    checks: gate_checks()'.

  Returns:
    True when every check passed.
  """
  return all(check.passed for check in checks)


def summary(report: Dict[str, Any]) -> str:
  """The top-K tables as a person reads them (the Evaluator's log).

  Args:
    report: evaluate()'s, or evaluation.json.

  Returns:
    The tables of tables.top_k_tables and tables.per_user_tables as text.
  """
  return (f'Evaluation on {report["num_eval_ratings"]:,} held-out ratings, '
          f'{report["num_candidates"]:,} candidate titles:\n' + '\n'.join(
              f'{title}:\n' + tabulate(rows, headers=header, floatfmt='.4f')
              for title, header, rows in tables.top_k_tables(report)
              + tables.per_user_tables(report)))


def gate_summary(checks: List[gate.Check]) -> str:
  """The gate's verdict as a person reads it (the Evaluator's log).

  Args:
    checks: gate_checks()'.

  Returns:
    Each check's line, and what the Pusher does with the verdict.
  """
  failed = [check.name for check in checks if not check.passed]
  return '\n'.join(['  ' + check.line() for check in checks] + [
      'Blessed: the Pusher ships this model.' if not failed else
      f'Not blessed ({", ".join(failed)} failed): the Pusher ships nothing.'])
