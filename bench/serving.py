"""Serving speed of the pushed model: retrieval latency and throughput, in one process.

    python bench/serving.py                 # newest version under outputs/serving
    python bench/serving.py --model DIR     # any pushed version directory
    python bench/serving.py --catalog-sizes 0,62000,1000000   # larger catalogs too

Loads the pushed SavedModel with tf.saved_model.load in this fresh process (the model needs
no code of this project; the benchmark uses it only to find the eval split and read the
catalog files), takes real queries from the newest run's eval split, and compares two ways
to answer them,
taking turns so that the machine's noise falls on both alike:
  signature  the exported `retrieve` signature (embedding and top-k inside the graph)
  numpy      the `embed` signature, then brute-force NumPy scoring of the embeddings
             exported beside it (assets.extra), the way an external index would start
Both must return the same titles; the benchmark checks that before timing anything.

With --catalog-sizes, the model's catalog (0) is followed by larger ones: its own candidate
embeddings plus synthetic ones drawn with the same mean and spread, up to N. The signature
path then runs the same in-graph brute force (a matmul and tf.math.top_k, as the exported
`retrieve` does) over that catalog, after the `embed` signature. Batches whose scores would
pass --max-scores-mb are skipped at that size.
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
    self.k = configs.Serving().serving_k  # the figures are measured at the default maximum
    self._real = (self.titles, self.candidates)
    self._retrieve = None  # the in-graph brute force over a grown catalog

  def grow(self, size: int, seed: int = 0) -> None:
    """Pads the catalog to `size` candidates with synthetic embeddings like the real ones."""
    tf = self.tf
    real_titles, real = self._real
    extra = max(0, size - len(real))
    rng = np.random.default_rng(seed)
    synthetic = rng.normal(real.mean(axis=0), real.std(axis=0),
                           size=(extra, real.shape[1])).astype(np.float32)
    self.candidates = np.concatenate([real, synthetic])
    self.titles = np.concatenate([real_titles,
                                  np.array([f'synthetic {i}' for i in range(extra)],
                                           dtype=object)])
    table = tf.constant(self.candidates)
    titles = tf.constant(self.titles.tolist())

    @tf.function(input_signature=[tf.TensorSpec([None, real.shape[1]], tf.float32)])
    def retrieve(queries):
      _, best = tf.math.top_k(tf.matmul(queries, table, transpose_b=True), k=self.k)
      return tf.gather(titles, best)
    self._retrieve = retrieve

  def signature(self, users, timestamps):
    if self._retrieve is not None:
      return self._retrieve(self._embed(users, timestamps)).numpy()
    out = self.model.signatures['retrieve'](user_id=self.tf.constant(users),
                                            timestamp=self.tf.constant(timestamps),
                                            k=self.tf.constant(self.k))
    return out['titles'].numpy()

  def _embed(self, users, timestamps):
    return self.model.signatures['embed'](user_id=self.tf.constant(users),
                                          timestamp=self.tf.constant(timestamps))['embedding']

  def numpy(self, users, timestamps):
    queries = self._embed(users, timestamps).numpy()
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
  parser.add_argument('--catalog-sizes', default='0',
                      help='catalogs to serve, comma-separated: 0 is the model\'s own, larger '
                      'ones add synthetic candidates (e.g. 0,62000,1000000)')
  parser.add_argument('--max-scores-mb', type=float, default=1024,
                      help='skip batches whose [batch, candidates] scores pass this')
  args = parser.parse_args(argv)
  directory = args.model or newest_version(
      configs.LocalConfig(local=configs.Local(output_dir=args.output_dir)).serving.serving_dir)
  _, eval_, _ = common.latest_raw_examples(args.output_dir)
  users, timestamps = eval_['user_id'], eval_['timestamp']
  paths = Paths(directory)
  print(f'Model {directory}: {len(paths.titles):,} candidates, k={paths.k}, loaded in '
        f'{paths.load_seconds:.2f} s.')
  summary = []
  for size in [int(size) for size in args.catalog_sizes.split(',')]:
    if size:
      paths.grow(size)
    summary.append(bench_catalog(paths, users, timestamps, args))
  if len(summary) > 1:
    print(f'\n{"candidates":>11}{"signature p50/p99 ms":>22}{"numpy p50/p99 ms":>18}'
          f'{"best q/s signature":>20}{"numpy":>9}')
    for row in summary:
      print(f'{row["candidates"]:>11,}{row["signature"][0]:>13.2f} /{row["signature"][1]:>6.2f}'
            f'{row["numpy"][0]:>10.2f} /{row["numpy"][1]:>6.2f}'
            f'{row["rate"]["signature"]:>20,.0f}{row["rate"]["numpy"]:>9,.0f}')
  return 0


def bench_catalog(paths: Paths, users, timestamps, args):
  """Agreement, one-query latency and batch throughput of both paths on the current catalog."""
  ways = {'signature': paths.signature, 'numpy': paths.numpy}
  candidates = len(paths.candidates)
  fits = lambda batch: batch * candidates * 4 <= args.max_scores_mb * 2**20
  batches = [batch for batch in args.batches if fits(batch)]
  print(f'\n== {candidates:,} candidates ==')

  # The same answers first. TensorFlow's and NumPy's float sums differ in the last bits,
  # which can swap two titles whose scores are that close.
  sample = slice(0, max(1, min(2000, max(batches or [1]))))
  pairs = [(list(a), [t.decode() for t in b])
           for a, b in zip(paths.numpy(users[sample], timestamps[sample]),
                           paths.signature(users[sample], timestamps[sample]))]
  in_order = np.mean([a == b for a, b in pairs])
  as_sets = np.mean([set(a) == set(b) for a, b in pairs])
  print(f'On {len(pairs):,} eval queries both paths return the same {paths.k} titles for '
        f'{as_sets:.1%}, in the same order for {in_order:.1%}.')

  for way in ways.values():  # warm up: the first calls trace and allocate
    for batch in [1] + batches:
      way(users[:batch], timestamps[:batch])

  latencies = {name: [] for name in ways}
  for request in range(args.requests):
    row = slice(request % len(users), request % len(users) + 1)
    for name, way in (ways.items() if request % 2 else reversed(ways.items())):
      latencies[name].append(timed(way, users[row], timestamps[row]) * 1000)
  print(f'One query per request ({args.requests} requests per path, taking turns):')
  print(f'  {"path":<12}{"p50 ms":>9}{"p99 ms":>9}')
  for name, values in latencies.items():
    print(f'  {name:<12}{np.percentile(values, 50):9.2f}{np.percentile(values, 99):9.2f}')
  ratio = np.percentile(latencies['numpy'], 50) / np.percentile(latencies['signature'], 50)
  print(f'  p50 numpy / signature: {ratio:.2f}x')

  print(f'Batches (about {args.seconds:g} s per batch size and path, taking turns):')
  print(f'  {"batch":>7}{"signature q/s":>15}{"numpy q/s":>12}{"numpy/signature":>17}')
  best = {name: 0.0 for name in ways}
  for batch in batches:
    done = {name: [0, 0.0] for name in ways}
    start = 0
    while min(seconds for _, seconds in done.values()) < args.seconds:
      rows = slice(start, start + batch)
      for name, way in ways.items():
        done[name][0] += len(users[rows])
        done[name][1] += timed(way, users[rows], timestamps[rows])
      start = (start + batch) % max(len(users) - batch, 1)
    rate = {name: queries / seconds for name, (queries, seconds) in done.items()}
    best = {name: max(best[name], rate[name]) for name in ways}
    print(f'  {batch:>7}{rate["signature"]:15,.0f}{rate["numpy"]:12,.0f}'
          f'{rate["numpy"] / rate["signature"]:16.2f}x')
  return {'candidates': candidates, 'rate': best,
          **{name: (np.percentile(values, 50), np.percentile(values, 99))
             for name, values in latencies.items()}}


if __name__ == '__main__':
  sys.exit(main())
