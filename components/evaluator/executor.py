"""RetrievalEvaluator's executor: evaluates the model the Pusher would ship, and blesses it.

It loads the exported SavedModel itself (raw features through the Transform graph inside
it), so what is measured is exactly what ships. Writes `evaluation.json` (docs/evaluation.md)
into the ModelEvaluation artifact, and BLESSED or NOT_BLESSED into the ModelBlessing
artifact with the custom properties TFX's own Evaluator sets (`blessed`, `current_model`,
`current_model_id`, `baseline_model`, `baseline_model_id`), which the Pusher and
LatestBlessedModelStrategy read.
"""
import dataclasses
import json
import logging
import os
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf
from tabulate import tabulate
from tensorflow_transform.tf_metadata import schema_utils
from tfx import types
from tfx.components.evaluator import constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import artifact_utils, standard_component_specs as keys
from tfx.utils import io_utils, path_utils

from components.evaluator import gate, tables
from data import features as f
from modules import metrics, serving
from modules.inputs import read_examples
from shared import names

logger = logging.getLogger('movielens_tfx.evaluator')
MIN_TOP100_KEY = 'min_top100'
MIN_LIFT_KEY = 'min_lift'
MAX_REGRESSION_KEY = 'max_regression'
UNKNOWN_USER = ''  # not an id of any user: the model's unknown-user embedding
_AGE_LABELS = {1: '1-17', 18: '18-24', 25: '25-34', 35: '35-44', 45: '45-49', 50: '50-55',
               56: '56+'}
# User features to slice by (when the release has them), and how to label their values.
SLICES = {
    f.USER_GENDER: lambda value: 'M' if value == 1 else 'F',
    f.BUCKETIZED_USER_AGE: lambda value: _AGE_LABELS.get(int(value), str(value)),
    f.USER_OCCUPATION_TEXT: lambda value: value.decode(),
}
ACTIVITY = 'user_training_ratings'


@dataclasses.dataclass
class EvalData:
  """The held-out ratings, and what each user rated in training."""
  user_id: np.ndarray
  timestamp: np.ndarray
  title: np.ndarray
  slices: Dict[str, np.ndarray]  # slice name -> each rating's label
  train_user_id: np.ndarray
  train_title: np.ndarray
  # The user features a request can carry (serving.USER_FEATURE_SPECS), of each rating.
  user_features: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  # For a subset: the EvalData it was taken from and its rows (their indexes are a slice of
  # the whole's, not another pass over every training rating).
  of: Optional[Tuple['EvalData', np.ndarray]] = None

  def subset(self, rows: np.ndarray) -> 'EvalData':
    """The eval ratings of `rows` (a mask or indexes), with all of the training ratings."""
    return EvalData(self.user_id[rows], self.timestamp[rows], self.title[rows],
                    {name: labels[rows] for name, labels in self.slices.items()},
                    self.train_user_id, self.train_title,
                    {name: values[rows] for name, values in self.user_features.items()},
                    of=(self, rows))

  def unseen_users(self) -> np.ndarray:
    """A mask of the eval ratings whose user has no training rating (read from the activity
    slice, which counted every user's training ratings)."""
    return self.slices[ACTIVITY] == metrics.activity_bucket(0)

  @classmethod
  def read(cls, examples: types.Artifact, schema: types.Artifact) -> 'EvalData':
    def pattern(split):
      return io_utils.all_files_pattern(artifact_utils.get_split_uri([examples], split))

    spec = schema_utils.schema_as_feature_spec(io_utils.SchemaReader().read(
        io_utils.get_only_uri_in_dir(schema.uri))).feature_spec
    sliced = [name for name in SLICES if name in spec]  # the release's user features
    requested = [name for name in serving.USER_FEATURE_SPECS if name in spec]
    train = read_examples([pattern('train')], {name: spec[name]
                                               for name in (f.USER_ID, f.MOVIE_TITLE)})
    eval_ = read_examples([pattern('eval')], {
        name: spec[name]
        for name in {f.USER_ID, f.MOVIE_TITLE, f.TIMESTAMP, *sliced, *requested}})
    labels = {name: np.array([SLICES[name](value) for value in eval_[name]], dtype=object)
              for name in sliced}
    users, counts = np.unique(train[f.USER_ID], return_counts=True)
    activity = dict(zip(users.tolist(), counts.tolist()))
    labels[ACTIVITY] = np.array([metrics.activity_bucket(activity.get(user, 0))
                                 for user in eval_[f.USER_ID].tolist()], dtype=object)
    return cls(eval_[f.USER_ID], eval_[f.TIMESTAMP], eval_[f.MOVIE_TITLE], labels,
               train[f.USER_ID], train[f.MOVIE_TITLE],
               {name: eval_[name] for name in requested})


class ServedModel:
  """An exported model as a serving system sees it: the SavedModel and its catalog."""

  def __init__(self, directory: str):
    self.directory = directory
    self.titles, self.candidates = serving.read_catalog(directory)
    self._loaded = tf.saved_model.load(directory)  # its signatures need it alive
    self._embed = self._loaded.signatures['embed']
    # A model trained without user features, or on a release without them, has no such
    # signature: queried by id and time alone.
    self._embed_with_features = self._loaded.signatures.get('embed_with_features')
    self._position = {title.encode(): index for index, title in enumerate(self.titles)}
    self._last_indexes = None  # (EvalData, its EvalIndexes)

  def eval_indexes(self, data: 'EvalData') -> 'EvalIndexes':
    """_eval_indexes of `data` under this model's catalog, computed once for the several
    rankings of the same ratings (it reads every training rating)."""
    if self._last_indexes is None or self._last_indexes[0] is not data:
      if data.of is None:
        indexes = _eval_indexes(self, data)
      else:
        whole, rows = data.of
        of_whole = self.eval_indexes(whole)
        indexes = EvalIndexes(of_whole.truth[rows], of_whole.seen[rows], of_whole.train_counts)
      self._last_indexes = (data, indexes)
    return self._last_indexes[1]

  def query_embeddings(self, user_id: np.ndarray, timestamp: np.ndarray,
                       user_features: Optional[Dict[str, np.ndarray]] = None,
                       batch_size: int = 8192) -> np.ndarray:
    """Embeddings of queries by id and time, and by the user's features when given and the
    model takes them."""
    signature, inputs = self._embed, {f.USER_ID: user_id, f.TIMESTAMP: timestamp}
    if user_features and self._embed_with_features is not None:
      signature = self._embed_with_features
      inputs.update(user_features)
    return np.concatenate([
        signature(**{name: tf.constant(values[start:start + batch_size])
                     for name, values in inputs.items()})['embedding'].numpy()
        for start in range(0, len(user_id), batch_size)])

  def catalog_index(self, titles: np.ndarray) -> np.ndarray:
    """Each title's position in this model's catalog; -1 outside it."""
    return np.array([self._position.get(title, -1) for title in titles.tolist()], np.int64)


def rank_model(model: ServedModel, data: EvalData, user_id: Optional[np.ndarray] = None,
               with_features: bool = True):
  """Ranks of the truth under a model, as listed and with the user's seen titles removed.

  Queried as a serving request would be: by id and time, and with the user's features when
  the model takes them (`with_features`; the model's validation used them too)."""
  queries = model.query_embeddings(data.user_id if user_id is None else user_id,
                                   data.timestamp, data.user_features if with_features else None)
  indexes = model.eval_indexes(data)
  scores_of = metrics.embedding_scores(queries, model.candidates)
  return metrics.ranks_listed_and_unseen(scores_of, indexes.truth, indexes.seen)


class EvalIndexes(NamedTuple):
  """The ratings of an EvalData under one model's catalog, as the rankings need them."""
  truth: np.ndarray         # [eval ratings] each title's catalog index, -1 outside it
  seen: np.ndarray          # [eval ratings] its user's training titles (metrics.seen_titles)
  train_counts: np.ndarray  # [titles] training ratings of each catalog title


def _eval_indexes(model: ServedModel, data: EvalData) -> EvalIndexes:
  train_index = model.catalog_index(data.train_title)
  return EvalIndexes(
      truth=model.catalog_index(data.title),
      seen=metrics.seen_titles(data.train_user_id, train_index, data.user_id),
      train_counts=np.bincount(train_index[train_index >= 0], minlength=len(model.titles)))


def rank_popularity(model: ServedModel, data: EvalData):
  """Ranks of the truth when everyone gets the titles in order of training ratings."""
  indexes = model.eval_indexes(data)
  return (metrics.popularity_ranks(indexes.train_counts, indexes.truth),
          metrics.popularity_ranks(indexes.train_counts, indexes.truth, indexes.seen))


def rank_all(rankings: Dict[str, Callable[[], Any]], what: str) -> Dict[str, Any]:
  """Each ranking's result, saying what is ranked and how long each took: at 25M ratings
  each takes minutes."""
  logger.info('Ranking %s: %s', what, ', '.join(rankings))
  ranked = {}
  for name, rank in rankings.items():
    start = time.monotonic()
    ranked[name] = rank()
    logger.info('  %s ranked in %.1f s', name, time.monotonic() - start)
  return ranked


def evaluate(data: EvalData, model: ServedModel,
             baseline: Optional[ServedModel] = None) -> Dict[str, Any]:
  """Every figure of evaluation.json but the gate."""
  unknown = np.full(len(data.user_id), UNKNOWN_USER, dtype=object)
  rankings = {'model': lambda: rank_model(model, data),
              'popularity': lambda: rank_popularity(model, data),
              'unknown_user': lambda: rank_model(model, data, unknown, with_features=False)}
  if baseline is not None:
    rankings['baseline_model'] = lambda: rank_model(baseline, data)
  ranked = rank_all(rankings, f'{len(data.title):,} eval ratings')
  report = {
      'num_eval_ratings': len(data.title),
      'num_eval_users': len(set(data.user_id.tolist())),
      'num_candidates': len(model.titles),
      'top_k': {name: metrics.top_k(ranks[0]) for name, ranks in ranked.items()},
      'top_k_unseen': {name: metrics.top_k(ranks[1]) for name, ranks in ranked.items()},
      'slices': {name: metrics.sliced_top_k(labels, {
          'model': ranked['model'][0], 'model_unseen': ranked['model'][1],
          'popularity': ranked['popularity'][0], 'popularity_unseen': ranked['popularity'][1]})
                 for name, labels in data.slices.items()},
  }
  unseen = data.unseen_users()
  if unseen.any():
    report['cold_start'] = cold_start(data.subset(unseen), model)
  return report


def cold_start(data: EvalData, model: ServedModel) -> Dict[str, Any]:
  """Top-K for eval users with no training rating (--holdout-users): the model queried with
  their features (their ids are unknown to it), as the mean user (neither), and the
  most-popular list."""
  unknown = np.full(len(data.user_id), UNKNOWN_USER, dtype=object)
  ranked = {name: ranks[0] for name, ranks in rank_all({
      'model_with_features': lambda: rank_model(model, data),
      'mean_user': lambda: rank_model(model, data, unknown, with_features=False),
      'popularity': lambda: rank_popularity(model, data)},
      f'{len(data.title):,} eval ratings of users never seen in training').items()}
  return {'num_ratings': len(data.title), 'num_users': len(set(data.user_id.tolist())),
          'top_k': {name: metrics.top_k(ranks) for name, ranks in ranked.items()}}


def summary(report: Dict[str, Any]) -> str:
  """The top-K tables as a person reads them."""
  return (f'Evaluation on {report["num_eval_ratings"]:,} held-out ratings, '
          f'{report["num_candidates"]:,} candidate titles:\n' + '\n'.join(
              f'{title}:\n' + tabulate(rows, headers=header, floatfmt='.4f')
              for title, header, rows in tables.top_k_tables(report)))


class Executor(evaluator_executor.Executor):
  """Subclasses TFX's Evaluator executor so that Kubeflow V2's launcher, which rewrites the
  model ids of an Evaluator's blessing for its resolver, treats this blessing the same."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    model = artifact_utils.get_single_instance(input_dict[keys.MODEL_KEY])
    baseline = (input_dict.get(keys.BASELINE_MODEL_KEY) or [None])[0]
    data = EvalData.read(artifact_utils.get_single_instance(input_dict[keys.EXAMPLES_KEY]),
                         artifact_utils.get_single_instance(input_dict[keys.SCHEMA_KEY]))
    report = evaluate(data, ServedModel(path_utils.serving_model_path(model.uri)),
                      ServedModel(path_utils.serving_model_path(baseline.uri))
                      if baseline else None)
    logger.info('%s', summary(report))

    top100 = report['top_k']['model']['100']
    results = gate.checks(
        top100, report['top_k']['popularity']['100'],
        float(exec_properties[MIN_TOP100_KEY]), float(exec_properties[MIN_LIFT_KEY]),
        float(exec_properties[MAX_REGRESSION_KEY]),
        report['top_k']['baseline_model']['100'] if baseline else None,
        baseline.id if baseline else None)
    blessed = all(check.passed for check in results)
    failed = [check.name for check in results if not check.passed]
    logger.info('Gate:\n%s\n%s', '\n'.join('  ' + check.line() for check in results),
                'Blessed: the Pusher ships this model.' if blessed else
                f'Not blessed ({", ".join(failed)} failed): the Pusher ships nothing.')
    report['model'] = {'artifact_id': model.id, 'uri': model.uri}
    report['baseline_model'] = ({'artifact_id': baseline.id, 'uri': baseline.uri}
                                if baseline else None)
    report['gate'] = {'blessed': blessed,
                      'checks': [dataclasses.asdict(check) for check in results]}

    evaluation = artifact_utils.get_single_instance(output_dict[keys.EVALUATION_KEY])
    io_utils.write_string_file(os.path.join(evaluation.uri, names.EVALUATION_FILE),
                               json.dumps(report, indent=2))
    for name in ('model', 'popularity'):
      evaluation.set_float_custom_property(f'{name}_top_100', report['top_k'][name]['100'])
    evaluation.set_int_custom_property('blessed', int(blessed))
    self._bless(artifact_utils.get_single_instance(output_dict[keys.BLESSING_KEY]),
                model, baseline, blessed)

  @staticmethod
  def _bless(blessing: types.Artifact, model: types.Artifact,
             baseline: Optional[types.Artifact], blessed: bool) -> None:
    """What TFX's Evaluator records, so the Pusher and the baseline resolver read it."""
    blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY,
                                        model.uri)
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY,
                                     model.id)
    if baseline is not None:
      blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY,
                                          baseline.uri)
      blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY,
                                       baseline.id)
    name = constants.BLESSED_FILE_NAME if blessed else constants.NOT_BLESSED_FILE_NAME
    io_utils.write_string_file(os.path.join(blessing.uri, name), '')
    blessing.set_int_custom_property(
        constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        constants.BLESSED_VALUE if blessed else constants.NOT_BLESSED_VALUE)
