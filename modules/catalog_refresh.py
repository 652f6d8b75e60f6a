"""A catalog refresh: the latest blessed model served with the release's current catalog,
without training.

The candidate tower reads a title's words and, with movie features, its genres and year
(modules/model.py), so it embeds titles it never saw; the query side (the Transform graph
and the query tower) is the served model's own, loaded back (serving.QuerySide). `refresh`
embeds every title of the current catalog with the blessed model's candidate tower
(`embed_titles`, saved with it), checks that every title the model already serves keeps its
embedding, and exports a served model with the same signatures over the new catalog, through
the Trainer's own export code (serving.QueryModel, serving.export, trainer.check_export).

What a title never seen is made of: the tower's title lookup (a StringLookup over the catalog
it was trained on, with one out-of-vocabulary index; Transform's title vocabulary only
counts ratings) gives every unknown title the same index 0, whose embedding is the mean of
the trained titles' (CandidateTower.average_unknown); its words are looked up in Transform's
title-word vocabulary (the words of the titles rated in training; a word outside it is the
one shared out-of-vocabulary word); its genres are embedded by the trained genre weights and
its year by the year's row (none for a year no catalog title had). So a new title differs
from another only by its words, genres and year.
"""
import logging
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from modules import features, inputs, serving, trainer
from shared import names

logger = logging.getLogger(f'{names.LOGGER}.catalog_refresh')
# How far a known title's embedding may move (float sums in another order): the Trainer's
# export check's tolerance.
TOLERANCE = 1e-4


class CatalogChangedError(ValueError):
  """Titles the blessed model serves would change their embeddings."""


def embed_catalog(candidate_tower_dir: str, titles: Sequence[str],
                  genres: Sequence[Sequence[int]]) -> np.ndarray:
  """Embeds titles, known to the tower or not, with a saved candidate tower.

  Args:
    candidate_tower_dir: the Model artifact's candidate tower (names.CANDIDATE_TOWER_DIR).
    titles: the titles.
    genres: each title's genre ids.

  Returns:
    Their embeddings, [titles, dimensions].
  """
  width = max([1] + [len(ids) for ids in genres])
  padded = np.full((len(titles), width), -1, np.int64)
  for row, ids in enumerate(genres):
    padded[row, :len(ids)] = ids
  tower = tf.saved_model.load(candidate_tower_dir)
  return tower.embed_titles(tf.constant(list(titles)), tf.constant(padded)).numpy()


def check_known_titles(titles: Sequence[str], embeddings: np.ndarray,
                       served_titles: Sequence[str], served_embeddings: np.ndarray) -> float:
  """Checks that every served title still in the catalog embeds as it is served.

  Args:
    titles, embeddings: the current catalog and its embeddings, row for row.
    served_titles, served_embeddings: the served model's catalog (serving.read_catalog).

  Returns:
    The largest difference of a known title's embedding (0 when no title is known).

  Raises:
    CatalogChangedError: naming the titles that moved by more than TOLERANCE.
  """
  served = {title: row for row, title in enumerate(served_titles)}
  known = [(row, served[title]) for row, title in enumerate(titles) if title in served]
  if not known:
    return 0.0
  rows, served_rows = (np.array(column) for column in zip(*known))
  if embeddings.shape[1] != served_embeddings.shape[1]:
    raise CatalogChangedError(
        f'the candidate tower embeds in {embeddings.shape[1]} dimensions, the served model '
        f'in {served_embeddings.shape[1]}: it is not the served model\'s tower')
  moved = np.abs(embeddings[rows] - served_embeddings[served_rows]).max(axis=1)
  if moved.max() > TOLERANCE:
    changed = [(float(moved[i]), titles[rows[i]]) for i in np.argsort(-moved)
               if moved[i] > TOLERANCE]
    raise CatalogChangedError(
        f'{len(changed)} of the {len(known)} titles the blessed model serves would change '
        f'their embeddings (by up to {changed[0][0]:.3g}; tolerance {TOLERANCE:g}), e.g. '
        + ', '.join(repr(title) for _, title in changed[:5]) + ': their genres differ in this '
        'catalog, or the candidate tower is not the served one. Retrain (a run without '
        '--refresh-catalog) to serve a catalog that changes known titles.')
  return float(moved.max())


def _known_users(served_dir: str, count: int = 7) -> List[str]:
  """The first users of the user vocabulary Transform wrote, which the served model carries
  among its assets."""
  path = os.path.join(served_dir, 'assets', features.USER_VOCABULARY)
  with tf.io.gfile.GFile(path) as file:
    return [line.rstrip('\n') for line, _ in zip(file, range(count))]


def refresh(served_dir: str, candidate_tower_dir: str, catalog_files: str, output_dir: str,
            max_k: int) -> Tuple[Dict, bool]:
  """Exports the served model over the current catalog, its known titles unchanged.

  Args:
    served_dir: the blessed model's served SavedModel (its Format-Serving).
    candidate_tower_dir: the blessed model's candidate tower.
    catalog_files: a glob pattern of the current catalog split's examples.
    output_dir: where the refreshed served model goes (nothing is written when the catalog
      is the served one).
    max_k: the most titles a retrieve request may ask for (--serving-k), capped at the
      catalog's size.

  Returns:
    (the report: the catalog's titles, the new and the removed ones, the known titles' largest
    difference and the export check's probe queries; whether a model was written: False when
    the catalog holds exactly the served titles).

  Raises:
    CatalogChangedError: a served title would change its embedding.
    ValueError: the blessed model was exported without a query side to reuse.
  """
  served_titles, served_embeddings = serving.read_catalog(served_dir)
  titles, genres = inputs.read_catalog_titles_and_genres(catalog_files)
  embeddings = embed_catalog(candidate_tower_dir, titles, genres)
  difference = check_known_titles(titles, embeddings, served_titles, served_embeddings)
  served = {title: row for row, title in enumerate(served_titles)}
  new = [title for title in titles if title not in served]
  current = set(titles)
  removed = [title for title in served_titles if title not in current]
  report = {'titles': len(titles), 'new_titles': new, 'removed_titles': removed,
            'known_titles': len(titles) - len(new), 'known_max_difference': difference}
  logger.info('Catalog refresh: %d titles, %d new, %d no longer in the catalog; the %d known '
              'ones embed as served (within %.1g)', len(titles), len(new), len(removed),
              report['known_titles'], difference)
  if not new and not removed:
    return report, False
  for row, title in enumerate(titles):  # served titles keep the very vectors they are served by
    if title in served:
      embeddings[row] = served_embeddings[served[title]]
  loaded = tf.saved_model.load(served_dir)
  if not hasattr(loaded, 'query_side'):
    raise ValueError(f'{served_dir} has no query side to serve a new catalog with (exported '
                     'before catalog refreshes existed): retrain, then refresh')
  model = serving.QueryModel(loaded.query_side, titles, embeddings, max_k)
  serving.export(output_dir, model)
  report['export_check'] = trainer.check_export(
      output_dir, model, trainer.probe_queries(_known_users(served_dir)))
  return report, True
