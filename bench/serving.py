"""Serving speed of the pushed model: retrieval latency and throughput, in one process.

    python bench/serving.py                 # newest version under outputs/serving
    python bench/serving.py --model DIR     # any pushed version directory

Loads the pushed SavedModel with tf.saved_model.load in this fresh process (the model needs
no code of this project; the benchmark uses it only to find the eval split and read the
catalog files), takes real queries from the newest run's eval split, and compares two ways
to answer them,
taking turns so that the machine's noise falls on both alike:
  signature  the exported `retrieve` signature (embedding and top-k inside the graph)
  numpy      the `embed` signature, then brute-force NumPy scoring of the embeddings
             exported beside it (assets.extra), the way an external index would start
Both must return the same titles; the benchmark checks that before timing anything.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (sets TensorFlow's environment)

from pipeline import configs  # noqa: E402


def newest_version(serving_dir: str) -> str:
  versions = sorted((v for v in os.listdir(serving_dir) if v.isdigit()), key=int) if (
      os.path.isdir(serving_dir)) else []
  if not versions:
    raise SystemExit(f'no pushed model under {serving_dir}: run `make run` first')
  return os.path.join(serving_dir, versions[-1])


class Paths:
  """The two ways to answer a batch of queries with the k best titles."""

  def __init__(self, directory: str):
    import tensorflow as tf
    from modules import serving
    self.tf = tf
    started = time.perf_counter()
    self.model = tf.saved_model.load(directory)
    self.load_seconds = time.perf_counter() - started
    self.titles, self.candidates = serving.read_catalog(directory)
    self.titles = np.array(self.titles, dtype=object)
    self.k = self.model.signatures['retrieve'].structured_outputs['titles'].shape[1] or 100

  def signature(self, users, timestamps):
    out = self.model.signatures['retrieve'](user_id=self.tf.constant(users),
                                            timestamp=self.tf.constant(timestamps))
    return out['titles'].numpy()

  def numpy(self, users, timestamps):
    queries = self.model.signatures['embed'](user_id=self.tf.constant(users),
                                             timestamp=self.tf.constant(timestamps))[
                                                 'embedding'].numpy()
    scores = queries @ self.candidates.T
    best = np.argpartition(-scores, self.k - 1, axis=1)[:, :self.k]
    order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1, kind='stable')
    return self.titles[np.take_along_axis(best, order, axis=1)]


def timed(function, *args) -> float:
  started = time.perf_counter()
  function(*args)
  return time.perf_counter() - started


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', help='a pushed version directory (default: the newest)')
  parser.add_argument('--output-dir', default=configs.DEFAULT_OUTPUT_DIR)
  parser.add_argument('--requests', type=int, default=500, help='single-query requests per path')
  parser.add_argument('--batches', type=int, nargs='+', default=[10, 100, 1000, 10000])
  parser.add_argument('--seconds', type=float, default=3.0,
                      help='time per batch size and path in the throughput part')
  args = parser.parse_args(argv)
  directory = args.model or newest_version(
      configs.PipelineConfig(output_dir=args.output_dir).serving_dir)
  _, eval_, _ = common.latest_raw_examples(args.output_dir)
  users, timestamps = eval_['user_id'], eval_['timestamp']
  paths = Paths(directory)
  ways = {'signature': paths.signature, 'numpy': paths.numpy}

  # The same answers first. TensorFlow's and NumPy's float sums differ in the last bits,
  # which can swap two titles whose scores are that close.
  sample = slice(0, 2000)
  pairs = [(list(a), [t.decode() for t in b])
           for a, b in zip(paths.numpy(users[sample], timestamps[sample]),
                           paths.signature(users[sample], timestamps[sample]))]
  in_order = np.mean([a == b for a, b in pairs])
  as_sets = np.mean([set(a) == set(b) for a, b in pairs])
  print(f'Model {directory}: {len(paths.titles):,} candidates, k={paths.k}, loaded in '
        f'{paths.load_seconds:.2f} s.\nOn 2,000 eval queries both paths return the same '
        f'{paths.k} titles for {as_sets:.1%}, in the same order for {in_order:.1%}.')

  for way in ways.values():  # warm up: the first calls trace and allocate
    for batch in [1] + args.batches:
      way(users[:batch], timestamps[:batch])

  latencies = {name: [] for name in ways}
  for request in range(args.requests):
    row = slice(request % len(users), request % len(users) + 1)
    for name, way in (ways.items() if request % 2 else reversed(ways.items())):
      latencies[name].append(timed(way, users[row], timestamps[row]) * 1000)
  print(f'\nOne query per request ({args.requests} requests per path, taking turns):')
  print(f'  {"path":<12}{"p50 ms":>9}{"p99 ms":>9}')
  for name, values in latencies.items():
    print(f'  {name:<12}{np.percentile(values, 50):9.2f}{np.percentile(values, 99):9.2f}')
  ratio = np.percentile(latencies['numpy'], 50) / np.percentile(latencies['signature'], 50)
  print(f'  p50 numpy / signature: {ratio:.2f}x')

  print(f'\nBatches (about {args.seconds:g} s per batch size and path, taking turns):')
  print(f'  {"batch":>7}{"signature q/s":>15}{"numpy q/s":>12}{"numpy/signature":>17}')
  for batch in args.batches:
    done = {name: [0, 0.0] for name in ways}
    start = 0
    while min(seconds for _, seconds in done.values()) < args.seconds:
      rows = slice(start, start + batch)
      for name, way in ways.items():
        done[name][0] += len(users[rows])
        done[name][1] += timed(way, users[rows], timestamps[rows])
      start = (start + batch) % max(len(users) - batch, 1)
    rate = {name: queries / seconds for name, (queries, seconds) in done.items()}
    print(f'  {batch:>7}{rate["signature"]:15,.0f}{rate["numpy"]:12,.0f}'
          f'{rate["numpy"] / rate["signature"]:16.2f}x')
  return 0


if __name__ == '__main__':
  sys.exit(main())
