"""The drift and skew the ValidationGate measures where nothing shifted: what --max-drift and
--max-skew must stay above (docs/data.md, "Drift and skew").

Reads a release, splits its ratings 80/20 as ExampleGen does (the stable hash) and by
seeded random draws, and prints TFDV's distances (components/drift.py's comparators:
L-infinity for titles and users, Jensen-Shannon divergence for genres) of

  skew   the eval split against the train split (ExampleGen's split)
  drift  the train split of each random 80/20 split against the first one's

    .venv/bin/python bench/drift_noise.py                  # MovieLens 100k
    .venv/bin/python bench/drift_noise.py --data-dir DIR   # any release
"""
import argparse
import os

import common  # noqa: F401  (the repository on the path, Keras 2 before TensorFlow)

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import tensorflow_data_validation as tfdv  # noqa: E402
from tensorflow_data_validation.statistics import stats_impl  # noqa: E402

from components import drift  # noqa: E402
from components.example_gen import ingest  # noqa: E402
from data import features, fetch, layouts  # noqa: E402

EVAL_PERCENT = 20


def statistics(ratings, movies):
  """TFDV's statistics of the compared features of some ratings."""
  batch = pa.RecordBatch.from_arrays([
      pa.array([[r[features.USER_ID].encode()] for r in ratings]),
      pa.array([[movies[r[features.MOVIE_ID]][features.MOVIE_TITLE].encode()] for r in ratings]),
      pa.array([movies[r[features.MOVIE_ID]][features.MOVIE_GENRES] for r in ratings],
               type=pa.list_(pa.int64()))],
      [features.USER_ID, features.MOVIE_TITLE, features.MOVIE_GENRES])
  return stats_impl.generate_statistics_in_memory(batch)


def distances(current, baseline):
  """{feature: distance} of two statistics, by the ValidationGate's comparators."""
  schema = tfdv.infer_schema(baseline)
  for compared in drift.comparator_config(1.0).default_slice_config.feature:
    tfdv.get_feature(schema, compared.path.step[0]).drift_comparator.CopyFrom(
        compared.distribution_comparator)
  found = tfdv.validate_statistics(current, schema, previous_statistics=baseline)
  return {info.path.step[0]: info.drift_measurements[0].value for info in found.drift_skew_info}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-dir', default=fetch.default_dest(fetch.DEFAULT_RELEASE))
  parser.add_argument('--seeds', type=int, default=3)
  args = parser.parse_args()
  layout = layouts.detect_layout(args.data_dir, layouts.list_files(args.data_dir))
  tables = {role: layouts.read_table(os.path.join(args.data_dir, table.file_name), table)[0]
            for role, table in layout.tables().items()}
  ratings = tables['ratings']
  movies = {movie[features.MOVIE_ID]: movie for movie in tables['movies']}
  in_eval = np.array([ingest.split_bucket(r, 100) >= 100 - EVAL_PERCENT for r in ratings])
  print(f'{args.data_dir}: {len(ratings):,} ratings, {len(movies):,} movies')
  rows = [('skew: eval against train (the stable hash)',
           distances(statistics([r for r, e in zip(ratings, in_eval) if e], movies),
                     statistics([r for r, e in zip(ratings, in_eval) if not e], movies)))]
  trains = []
  for seed in range(args.seeds):
    keep = np.random.default_rng(seed).random(len(ratings)) >= EVAL_PERCENT / 100
    trains.append(statistics([r for r, k in zip(ratings, keep) if k], movies))
  rows += [(f'drift: train of random split {seed} against split 0',
            distances(trains[seed], trains[0])) for seed in range(1, args.seeds)]
  print(f'{"":50s}' + ''.join(f'{name:>14s}' for name in drift.DRIFT_FEATURES))
  for label, measured in rows:
    print(f'{label:50s}' + ''.join(f'{measured[name]:14.5f}' for name in drift.DRIFT_FEATURES))


if __name__ == '__main__':
  main()
