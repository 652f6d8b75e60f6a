"""New titles without retraining, on MovieLens 100k: how a title the model never saw ranks for
the users who rated it, against the same title when the model was trained with it.

Holds out --titles movies (a seeded sample of those with at least --min-ratings ratings and a
title no other movie has): a release without them (their ratings and their catalog rows
dropped) is trained on and blessed, then `--refresh-catalog` serves that model over the full
release's catalog; a second output directory trains on the full release. Both releases are
written through data/layouts.py, so they differ only by the held-out movies, and the eval
split (a stable hash of each rating) holds the same ratings. Each pushed model is asked, for
the held-out titles' eval ratings of the full release, through its `retrieve_with_features`
signature (k = 100, the user's features as ExampleGen stores them); and its `embed_with_features`
scores against the exported catalog give every rating's rank (modules/metrics.py).

    nice -n 10 .venv/bin/python bench/new_titles.py   # three pipeline runs on 100k
    .venv/bin/python bench/new_titles.py --measure-only  # the figures of the runs made
"""
import argparse
import os
import random
import sys
from typing import Dict, List, Optional

import common  # noqa: F401  (sets up the environment before TensorFlow)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from data import layouts  # noqa: E402
from modules import catalog_refresh, features, inputs, metrics, serving  # noqa: E402
from pipeline import configs, local  # noqa: E402
from shared import names  # noqa: E402

DEFAULT_DATA = os.path.join(names.REPO_ROOT, 'data', 'movielens', 'ml-100k')
RETRIEVE, EMBED = 'retrieve_with_features', 'embed_with_features'
QUERY_FEATURES = [features.USER_ID, features.TIMESTAMP] + [
    feature.name for feature in features.OPTIONAL_QUERY_FEATURES]


def read_release(data_dir: str):
  """(the layout, {role: records}) of a release."""
  layout = layouts.detect_layout(data_dir, layouts.list_files(data_dir))
  tables = {}
  for role, table in layout.tables().items():
    records, bad = layouts.read_table(os.path.join(data_dir, table.file_name), table)
    if bad:
      raise SystemExit(f'{len(bad)} bad lines in {table.file_name}')
    tables[role] = records
  return layout, tables


def held_out_movies(tables, count: int, min_ratings: int, seed: int) -> set:
  """A seeded sample of `count` movie ids among those with at least `min_ratings` ratings and
  a title no other movie has."""
  ratings_of: Dict[str, int] = {}
  for rating in tables['ratings']:
    ratings_of[rating[features.MOVIE_ID]] = ratings_of.get(rating[features.MOVIE_ID], 0) + 1
  movies_of_title: Dict[str, int] = {}
  for movie in tables['movies']:
    movies_of_title[movie[features.MOVIE_TITLE]] = movies_of_title.get(
        movie[features.MOVIE_TITLE], 0) + 1
  eligible = sorted(movie[features.MOVIE_ID] for movie in tables['movies']
                    if ratings_of.get(movie[features.MOVIE_ID], 0) >= min_ratings
                    and movies_of_title[movie[features.MOVIE_TITLE]] == 1)
  return set(random.Random(seed).sample(eligible, count))


def write_releases(layout, tables, held: set, work_dir: str) -> None:
  """Writes the full release and the one without the held-out movies into work_dir."""
  layouts.write_release(os.path.join(work_dir, 'full'), layout, **tables)
  layouts.write_release(
      os.path.join(work_dir, 'held-out'), layout,
      ratings=[r for r in tables['ratings'] if r[features.MOVIE_ID] not in held],
      movies=[m for m in tables['movies'] if m[features.MOVIE_ID] not in held],
      users=tables.get('users', ()))


def run(data_dir: str, output_dir: str, *flags: str) -> None:
  """A local run of the pipeline (runner_local.py's), which must succeed."""
  if local.run_and_report(configs.parse_args(
      ['--data-dir', data_dir, '--output-dir', output_dir, *flags])) != 0:
    raise SystemExit(f'the run on {data_dir} into {output_dir} failed')


def pushed_version(output_dir: str) -> str:
  """The newest version the runs of output_dir pushed."""
  serving_dir = configs.LocalConfig(local=configs.Local(output_dir=output_dir)).serving.serving_dir
  return os.path.join(serving_dir, max(os.listdir(serving_dir), key=int))


def figures(model_dir: str, ratings: Dict[str, np.ndarray],
            candidates: Optional[np.ndarray] = None, batch: int = 2000) -> Dict:
  """Top-K of each rating's title through the served model's signatures; with `candidates`,
  the ranks against those embeddings of its catalog's titles instead (and no retrieve)."""
  loaded = tf.saved_model.load(model_dir)
  titles, exported = serving.read_catalog(model_dir)
  if candidates is None:
    candidates = exported
  position = {title: row for row, title in enumerate(titles)}
  truth = np.array([position[title.decode()] for title in ratings[features.MOVIE_TITLE]])
  hits, ranks = [], []
  for start in range(0, len(truth), batch):
    query = {name: tf.constant(ratings[name][start:start + batch]) for name in QUERY_FEATURES}
    if candidates is exported:
      answer = loaded.signatures[RETRIEVE](**query, k=tf.constant(names.GATE_K))['titles']
      true_titles = ratings[features.MOVIE_TITLE][start:start + batch]
      hits.extend(title in row for title, row in zip(true_titles, answer.numpy()))
    scores = metrics.embedding_scores(loaded.signatures[EMBED](**query)['embedding'].numpy(),
                                      candidates)
    ranks.append(metrics.ranks_of_truth(scores, truth[start:start + batch]))
  ranks = np.concatenate(ranks)
  return {'ratings': len(truth), 'retrieve_top100': float(np.mean(hits)) if hits else None,
          'top_k': metrics.top_k(ranks, names.TOP_KS), 'median_rank': float(np.median(ranks)) + 1}


def main(argv=None) -> int:
  """Holds titles out, refreshes, trains with them, and prints how their ratings rank.

  Args:
    argv: the flags (--help).

  Returns:
    0.
  """
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-dir', default=DEFAULT_DATA)
  parser.add_argument('--work-dir', default='/tmp/bench-new-titles')
  parser.add_argument('--titles', type=int, default=50, help='movies held out of training')
  parser.add_argument('--min-ratings', type=int, default=20,
                      help='ratings a held-out movie has in the release')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--measure-only', action='store_true',
                      help="measure the models an earlier run of this script pushed into "
                      '--work-dir (writing the releases again would run everything again)')
  args = parser.parse_args(argv)
  layout, tables = read_release(args.data_dir)
  held_ids = held_out_movies(tables, args.titles, args.min_ratings, args.seed)
  held = sorted(m[features.MOVIE_TITLE] for m in tables['movies']
                if m[features.MOVIE_ID] in held_ids)
  full, held_out = (os.path.join(args.work_dir, name) for name in ('full', 'held-out'))
  refreshed_dir, trained_dir = (os.path.join(args.work_dir, name)
                                for name in ('outputs-refreshed', 'outputs-trained'))
  if not args.measure_only:
    write_releases(layout, tables, held_ids, args.work_dir)
    run(held_out, refreshed_dir)
    run(full, refreshed_dir, '--refresh-catalog')
    run(full, trained_dir)
  # The full release's eval split, as the run that trained on it read it.
  spec = features.raw_feature_spec(QUERY_FEATURES + [features.MOVIE_TITLE])
  _, eval_, _ = common.latest_raw_examples(trained_dir, extra_spec=spec)
  is_held = np.isin(eval_[features.MOVIE_TITLE], [title.encode() for title in held])
  subsets = {'held-out titles': {name: values[is_held] for name, values in eval_.items()},
             'the other titles': {name: values[~is_held] for name, values in eval_.items()}}
  print(f'\n{len(held)} titles held out (seed {args.seed}, at least {args.min_ratings} ratings '
        f'each): {int(is_held.sum())} of the {len(is_held)} eval ratings are theirs')
  print(f'{"eval ratings of":<18} {"model":<36} {"ratings":>7} {"top-10":>7} {"top-100":>8} '
        f'{"retrieve":>9} {"median rank":>12}')
  rows = [(subset, label, figures(pushed_version(output_dir), ratings))
          for subset, ratings in subsets.items()
          for label, output_dir in (('never trained on them, refreshed', refreshed_dir),
                                    ('trained with them', trained_dir))]
  rows.insert(2, ('held-out titles', 'trained with them, embedded as new',
                  figures(pushed_version(trained_dir), subsets['held-out titles'],
                          embedded_as_new(trained_dir, held))))
  for subset, label, found in rows:
    retrieved = found['retrieve_top100']
    print(f'{subset:<18} {label:<36} {found["ratings"]:>7} {found["top_k"]["10"]:>7.4f} '
          f'{found["top_k"][names.GATE_KEY]:>8.4f} '
          f'{"-" if retrieved is None else f"{retrieved:.4f}":>9} {found["median_rank"]:>12.0f}')
  return 0


def embedded_as_new(output_dir: str, held: List[str]) -> np.ndarray:
  """The exported catalog of output_dir's pushed model with the held-out titles embedded as
  new titles by its own candidate tower: their words, genres and year trained with them, the
  title-id embedding the unknown title's (a space after each title: a string the title
  lookup does not know, the same words)."""
  outputs = common.latest_outputs(output_dir, names.PIPELINE_NAME, f'{names.TRAINER}.model')
  model_uri = outputs[f'{names.TRAINER}.model']
  titles, embeddings = serving.read_catalog(os.path.join(model_uri, 'Format-Serving'))
  catalog_titles, catalog_genres = inputs.read_catalog_titles_and_genres(os.path.join(
      outputs[f'{names.EXAMPLE_GEN}.catalog'], f'Split-{names.CATALOG_SPLIT}', '*'))
  genres = dict(zip(catalog_titles, catalog_genres))
  as_new = catalog_refresh.embed_catalog(os.path.join(model_uri, names.CANDIDATE_TOWER_DIR),
                                         [title + ' ' for title in held],
                                         [genres[title] for title in held])
  row = {title: index for index, title in enumerate(titles)}
  embeddings = embeddings.copy()
  embeddings[[row[title] for title in held]] = as_new
  return embeddings


if __name__ == '__main__':
  sys.exit(main())
