"""Lists a person can judge (`python -m inspector lists`, and the report's Lists section).

For a few users of a run's eval split (drawn by a seed, and any asked for by id): the titles
they rated last in training, the run's model's top 10 with those training titles removed
(the model queried through its SavedModel's signatures, as the Evaluator queries it, at the
time of the user's latest held-out rating), what the most-popular list shows them with the
same titles removed, and which of their held-out titles each list hits. The model is the
Trainer's Model artifact of the run, the one the Evaluator judged and the Pusher shipped
when it was blessed.
"""
import os
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import numpy as np

from data import features
from inspector.queries import InspectionError, Inspector
from modules import metrics
from shared import names

if TYPE_CHECKING:
  from components.evaluator import ranking

LIST_LENGTH = metrics.PER_USER_K  # the lists' length: the per-user figures' K
LATEST_RATED = 5  # training titles shown of each user, the latest first
USERS = 3  # users drawn by the seed
# The training split's features read: who rated what, and when.
TRAIN_FEATURES = (features.USER_ID, features.MOVIE_TITLE, features.TIMESTAMP)


def choose_users(eval_users: np.ndarray, count: int, seed: int,
                 requested: Sequence[bytes] = ()) -> List[bytes]:
  """The users to show: those requested, then `count` more of the eval split's, by a seed.

  Args:
    eval_users: [eval ratings] each rating's user.
    count: how many users to draw (fewer when the split has fewer).
    seed: the seed of the draw (the same seed, the same users on the same split).
    requested: ids to show first; each must be a user of the eval split.

  Returns:
    The users' ids, the requested first.

  Raises:
    ValueError: a requested id is no user of the eval split.
  """
  users = np.unique(eval_users)
  unknown = [user for user in requested if user not in set(users.tolist())]
  if unknown:
    raise ValueError(f'not users of the eval split: {", ".join(u.decode() for u in unknown)}')
  others = users[~np.isin(users, list(requested))]
  drawn = np.random.default_rng(seed).choice(len(others), min(count, len(others)),
                                             replace=False)
  return [*requested, *others[np.sort(drawn)].tolist()]


def user_lists(train: Dict[str, np.ndarray], ratings: 'ranking.EvalRatings',
               model: 'ranking.ServedModel', users: Sequence[bytes]) -> List[Dict]:
  """Each user's latest training titles, and the model's and the most-popular list's top
  LIST_LENGTH with the user's training titles removed.

  Args:
    train: the training split's TRAIN_FEATURES, an array each.
    ratings: the eval ratings, with every training rating (ranking.EvalRatings).
    model: the served model.
    users: the users to show, each with an eval rating.

  Returns:
    One dict a user: user_id, num_train_ratings, latest_rated (LATEST_RATED distinct titles,
    the latest first), held_out (the user's eval titles), model and popularity (the lists),
    model_hits and popularity_hits (the held-out titles each list shows).
  """
  # Imported here, as the report imports TensorFlow: the other commands start without it.
  from components.evaluator import ranking
  indexes = ranking.catalog_indexes(model, ratings)
  popularity_order = np.argsort(-indexes.train_counts, kind='stable')

  def unseen_top(order, seen):  # ties in catalog order, as the order gives them
    return [model.titles[i] for i in order[~np.isin(order, seen)][:LIST_LENGTH]]

  shown = []
  for user in users:
    rows = np.flatnonzero(ratings.user_id == user)
    latest = rows[np.argmax(ratings.timestamp[rows])]
    query = ratings.subset([latest])
    scores = model.query_embeddings(query.user_id, query.timestamp,
                                    query.user_features)[0] @ model.candidates.T
    seen = indexes.seen[latest]
    model_list = unseen_top(np.argsort(-scores, kind='stable'), seen)
    popular = unseen_top(popularity_order, seen)
    held_out = sorted({title.decode() for title in ratings.title[rows].tolist()})
    trained = np.flatnonzero(train[features.USER_ID] == user)
    trained = trained[np.argsort(-train[features.TIMESTAMP][trained], kind='stable')]
    shown.append({
        'user_id': user.decode(), 'num_train_ratings': len(trained),
        # Distinct titles: two movies of the catalog can share one.
        'latest_rated': list(dict.fromkeys(train[features.MOVIE_TITLE][row].decode()
                                           for row in trained))[:LATEST_RATED],
        'held_out': held_out, 'model': model_list, 'popularity': popular,
        'model_hits': [title for title in model_list if title in held_out],
        'popularity_hits': [title for title in popular if title in held_out]})
  return shown


def run_lists(inspector: Inspector, selector: Optional[str] = None,
              requested: Sequence[str] = (), count: int = USERS, seed: int = 0) -> Dict:
  """user_lists of a run: its split, read from ExampleGen's artifact, and its model.

  Args:
    inspector: the runs.
    selector: the run (Inspector.select's); the latest by default.
    requested: user ids to show first.
    count: users drawn by the seed besides.
    seed: the seed of the draw.

  Returns:
    run, run_id, model_uri, seed, k (the lists' length) and users (user_lists').

  Raises:
    InspectionError: the run has no trained model, or a requested id is no eval user.
  """
  from tfx.types import standard_artifacts
  from tfx.utils import path_utils
  from components.evaluator import executor, ranking
  number, context = inspector.select(selector)
  outputs = {(name, key): inspector.output(context, name, key) for name, key in (
      (names.EXAMPLE_GEN, 'examples'), (names.SCHEMA_GEN, 'schema'), (names.TRAINER, 'model'))}
  # A catalog refresh (--refresh-catalog) makes its model without training.
  outputs[names.TRAINER, 'model'] = (outputs[names.TRAINER, 'model']
                                     or inspector.output(context, names.CATALOG_REFRESH, 'model'))
  missing = [f'{name}.{key}' for (name, key), output in outputs.items() if output is None]
  if missing:
    raise InspectionError(f'run {number} has no {", ".join(missing)}: it stopped before '
                          'training, so there is no model to list titles with')
  examples = standard_artifacts.Examples()
  examples.uri = outputs[names.EXAMPLE_GEN, 'examples'].uri
  examples.split_names = outputs[names.EXAMPLE_GEN, 'examples'].properties['split_names']
  schema = standard_artifacts.Schema()
  schema.uri = outputs[names.SCHEMA_GEN, 'schema'].uri
  train, eval_ = executor.read_splits(examples, schema, TRAIN_FEATURES)
  ratings = ranking.EvalRatings.from_examples(train, eval_)
  try:
    users = choose_users(ratings.user_id, count, seed, [user.encode() for user in requested])
  except ValueError as error:
    raise InspectionError(f'{error} (run {number})') from None
  model_uri = path_utils.serving_model_path(outputs[names.TRAINER, 'model'].uri)
  if not os.path.isdir(model_uri):
    raise InspectionError(f'run {number}\'s model is gone: no {model_uri}')
  return {'run': number, 'run_id': context.name, 'model_uri': model_uri, 'seed': seed,
          'k': LIST_LENGTH,
          'users': user_lists(train, ratings, ranking.ServedModel(model_uri), users)}
