r"""How the pipeline scales: per component wall seconds, microseconds per rating and peak memory.

Runs `runner_local.py --until COMPONENT --no-cache` (ExampleGen through Transform by default)
in a fresh process per case, on synthetic releases written by `data.synthetic` (kept in
--work-dir between runs) or on a real release directory, and prints one table of every case
plus the ratio of microseconds per rating between the two largest sizes of each layout and
mode (1.0 = linear cost). Peak memory is the resident memory of the run's whole process tree
(the runner and any Beam worker processes), sampled twice a second. A run through the Trainer
also reports its first epoch and its later epochs in microseconds per training rating (from
history.json), the per-epoch cost that must grow linearly with the data. With
--keep-outputs --resume, a stopped run is continued with the cache on: only the components
that had not finished run, and the figures (marked "continued") are theirs.

    .venv/bin/python bench/scale.py --sizes 1m,10m --layouts 1m,csv
    .venv/bin/python bench/scale.py --sizes 1m --modes in_memory,multi_threading,multi_processing
    .venv/bin/python bench/scale.py --sizes 25m --layouts csv
    .venv/bin/python bench/scale.py --data-dir data/movielens/ml-100k --sizes 100k
    .venv/bin/python bench/scale.py --sizes 25m --layouts csv --until '' --keep-outputs \
        --run-args '--epochs 1 --batch-size 8192 --learning-rate 0.004'
    .venv/bin/python bench/scale.py --sizes 1m --layouts 1m --until MovieLensExampleGen \
        --compare-with /tmp/old-checkout --repeat 3

With --compare-with, every case also runs in another checkout of the project (its own
runner_local.py and code), alternating with this one --repeat times, and the table ends
with each component's seconds there against here: on a shared machine, alternating keeps
the comparison fair when the load changes.
"""
import argparse
import contextlib
import itertools
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from data import synthetic  # noqa: E402
from pipeline import metadata  # noqa: E402
from shared import names  # noqa: E402

LAYOUTS = {'1m': 'grouplens-1m', 'csv': 'grouplens-csv'}
MODES = {
    'in_memory': '',  # `--beam-args ''`: in_memory whatever the data's size (pipeline/configs.py)
    'multi_threading': '--direct_running_mode=multi_threading --direct_num_workers=2',
    'multi_processing': '--direct_running_mode=multi_processing --direct_num_workers=2',
}
PIPELINE = names.PIPELINE_NAME


def parse_size(text: str) -> int:
  scale = {'k': 1_000, 'm': 1_000_000}.get(text[-1].lower(), 1)
  return int(float(text[:-1] if scale > 1 else text) * scale)


class MemorySampler(threading.Thread):
  """Samples the resident memory of a process and its descendants, with timestamps."""

  def __init__(self, pid: int, every: float = 0.5):
    super().__init__(daemon=True)
    self._process, self._every = psutil.Process(pid), every
    self.samples: List[tuple] = []  # (time, bytes)
    self._done = threading.Event()

  def run(self):
    while not self._done.is_set():
      try:
        tree = [self._process] + self._process.children(recursive=True)
        total = 0
        for process in tree:
          try:
            total += process.memory_info().rss
          except psutil.Error:
            pass
        self.samples.append((time.time(), total))
      except psutil.Error:
        return
      self._done.wait(self._every)

  def stop(self):
    self._done.set()
    self.join()

  def peak(self, start: float = 0, end: float = float('inf')) -> int:
    return max((rss for t, rss in self.samples if start <= t <= end), default=0)


def release_dir(work_dir: str, ratings: int, layout: str) -> str:
  """A synthetic release of `ratings` in `layout`, written once into work_dir."""
  directory = os.path.join(work_dir, f'synthetic-{layout}-{ratings}')
  manifest = os.path.join(directory, names.SOURCE_MANIFEST)
  if not os.path.exists(manifest):
    synthetic.write(synthetic.Spec(ratings=ratings, layout=LAYOUTS[layout]), directory)
  return directory


def run_case(data_dir: str, ratings: int, beam_args: str, until: str, run_args: List[str],
             log: str, keep: bool, resume: bool = False, root: str = ROOT) -> Dict:
  """One fresh run (or a continued one); its components' seconds and peak memory, and the
  run's.

  With `keep`, the run's outputs stay beside its log (`<log>.outputs`) for inspection; with
  `resume` too, a stopped run in them is continued (TFX's cache reuses every component that
  finished; the figures are the continued run's, the log appended to). `root` is the
  checkout whose runner_local.py runs.
  """
  with (contextlib.nullcontext(log[:-len('.log')] + '.outputs') if keep
        else tempfile.TemporaryDirectory(prefix='scale-')) as outputs:
    if keep and not resume:
      shutil.rmtree(outputs, ignore_errors=True)
    command = [sys.executable, os.path.join(root, 'runner_local.py'), '--data-dir', data_dir,
               '--output-dir', outputs, '--cache' if resume else '--no-cache',
               '--beam-args', beam_args]
    if until:
      command += ['--until', until]
    command += run_args
    start = time.time()
    with open(log, 'a' if resume else 'w') as out:
      process = subprocess.Popen(command, cwd=root, stdout=out, stderr=subprocess.STDOUT)
      sampler = MemorySampler(process.pid)
      sampler.start()
      code = process.wait()
      sampler.stop()
    seconds = time.time() - start
    if code != 0:
      raise SystemExit(f'the run failed (exit {code}); see {log}')
    store = metadata.connect(os.path.join(outputs, 'metadata.sqlite'))
    run = metadata.runs(store, PIPELINE)[-1]
    components = {
        e.component: {'seconds': e.finished - e.started,
                      'us_per_rating': (e.finished - e.started) / ratings * 1e6,
                      'peak_gib': sampler.peak(e.started, e.finished) / 2**30}
        for e in metadata.run_executions(store, PIPELINE, run) if e.finished > e.started}
    model_run = [o.uri for o in metadata.run_outputs(store, PIPELINE, run)
                 if o.component == names.TRAINER and o.key == 'model_run']
    epochs = training_epochs(os.path.join(model_run[0], names.HISTORY_FILE)) if model_run else {}
  return {'seconds': seconds, 'peak_gib': sampler.peak() / 2**30, 'components': components,
          'continued': resume, **epochs}


def training_epochs(history_file: str) -> Dict:
  """The Trainer's first epoch and its later epochs without a validation before them, in
  seconds and microseconds per training rating (history.json's times are taken before
  each epoch's validation)."""
  with open(history_file) as file:
    history = json.load(file)
  entries, per_rating = history['history'], 1e6 / history['num_train']
  first = entries[0]['seconds']
  later = [entry['seconds'] - before['seconds'] for before, entry in zip(entries, entries[1:])
           if 'val_top_k' not in before]
  result = {'num_train': history['num_train'], 'epoch_1_seconds': first,
            'epoch_1_us_per_rating': first * per_rating}
  if later:
    mean = sum(later) / len(later)
    result.update(later_epoch_seconds=mean, later_epoch_us_per_rating=mean * per_rating)
  return result


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog=__doc__.split('\n', 2)[2])
  parser.add_argument('--sizes', default='1m,10m', help='ratings per case: 100k, 1m, 10m, ...')
  parser.add_argument('--layouts', default='1m,csv', help='synthetic layouts: 1m, csv')
  parser.add_argument('--modes', default='in_memory', help=f'DirectRunner modes: {", ".join(MODES)}')
  parser.add_argument('--until', default='Transform',
                      help="the last component to run ('' for the whole pipeline)")
  parser.add_argument('--run-args', default='',
                      help="more runner_local.py flags for every case, e.g. training settings")
  parser.add_argument('--keep-outputs', action='store_true',
                      help="keep each run's outputs in --work-dir (run-CASE.outputs) to inspect")
  parser.add_argument('--resume', action='store_true',
                      help='with --keep-outputs: continue stopped runs in their kept outputs, '
                      'reusing the components that finished')
  parser.add_argument('--data-dir', help='a real release instead of synthetic ones '
                      '(its size from --sizes, one size)')
  parser.add_argument('--work-dir', default=os.path.join(tempfile.gettempdir(),
                                                         'movielens-scale'),
                      help='where synthetic releases and logs are kept (default: %(default)s)')
  parser.add_argument('--json', help='also write the results to this file')
  parser.add_argument('--compare-with', metavar='CHECKOUT',
                      help='another checkout of the project to run every case in too, '
                      'alternating with this one')
  parser.add_argument('--repeat', type=int, default=1,
                      help='runs of every case (in each checkout, alternating)')
  args = parser.parse_args()
  if args.resume and not args.keep_outputs:
    parser.error('--resume continues runs kept by --keep-outputs: give both')
  os.makedirs(args.work_dir, exist_ok=True)
  checkouts = {ROOT: 'here'}  # root: its label
  if args.compare_with:
    checkouts[os.path.abspath(args.compare_with)] = 'there'

  results = []
  for size in args.sizes.split(','):
    ratings = parse_size(size)
    for layout in ([None] if args.data_dir else args.layouts.split(',')):
      data_dir = args.data_dir or release_dir(args.work_dir, ratings, layout)
      for mode in args.modes.split(','):
        for repeat, root in itertools.product(range(args.repeat), checkouts):
          label = f'{size} {layout or os.path.basename(data_dir.rstrip("/"))} {mode}'
          if len(checkouts) > 1 or args.repeat > 1:
            label += f' {checkouts[root]} {repeat + 1}'
          log = os.path.join(args.work_dir, f'run-{label.replace(" ", "-")}.log')
          print(f'{time.strftime("%H:%M:%S")} {label}: running (log: {log}) ...', flush=True)
          result = run_case(data_dir, ratings, MODES[mode], args.until,
                            shlex.split(args.run_args), log, args.keep_outputs, args.resume,
                            root)
          result.update(size=size, ratings=ratings, layout=layout or data_dir, mode=mode,
                        checkout=checkouts[root])
          results.append(result)
          print(f'{time.strftime("%H:%M:%S")} {label}: {result["seconds"]:.0f} s, peak '
                f'{result["peak_gib"]:.2f} GiB', flush=True)
          if args.json:
            with open(args.json, 'w') as file:
              json.dump(results, file, indent=2)
  print_table([r for r in results if r['checkout'] == checkouts[ROOT]])
  if args.compare_with:
    print_comparison(results, checkouts[os.path.abspath(args.compare_with)], checkouts[ROOT])


def print_table(results: List[Dict]) -> None:
  print(f'\n{"size":>6} {"layout":<6} {"mode":<16} {"component":<20} {"seconds":>8} '
        f'{"us/rating":>10} {"peak GiB":>9}')
  for result in results:
    rows = list(result['components'].items()) + [(
        'continued run' if result.get('continued') else 'whole run',
        {'seconds': result['seconds'], 'peak_gib': result['peak_gib'],
         'us_per_rating': result['seconds'] / result['ratings'] * 1e6})]
    for epoch in ('epoch_1', 'later_epoch'):  # per training rating, not per rating
      if f'{epoch}_seconds' in result:
        rows.append((f'training {epoch.replace("_", " ")}',
                     {'seconds': result[f'{epoch}_seconds'], 'peak_gib': float('nan'),
                      'us_per_rating': result[f'{epoch}_us_per_rating']}))
    for name, row in rows:
      if row['seconds'] < 1 and not name.endswith(' run'):
        continue  # SchemaGen, ExampleValidator, the gate: fixed cost, not scale
      print(f'{result["size"]:>6} {str(result["layout"])[-6:]:<6} {result["mode"]:<16} '
            f'{name:<20} {row["seconds"]:8.1f} {row["us_per_rating"]:10.1f} '
            f'{row["peak_gib"]:9.2f}')
  # Linear cost: us per rating of the largest size against the next, per layout and mode.
  groups = {}
  for result in results:
    groups.setdefault((str(result['layout']), result['mode']), []).append(result)
  for (layout, mode), group in groups.items():
    group.sort(key=lambda r: r['ratings'])
    if len(group) < 2 or group[-2]['ratings'] == group[-1]['ratings']:
      continue
    small, large = group[-2], group[-1]
    print(f'\nus/rating at {large["size"]} / at {small["size"]} ({layout}, {mode}):')
    for name, row in large['components'].items():
      if name in small['components'] and row['seconds'] >= 1:
        print(f'  {name:<20} {row["us_per_rating"] / small["components"][name]["us_per_rating"]:.2f}x')
    for epoch in ('epoch_1', 'later_epoch'):
      if f'{epoch}_us_per_rating' in large and f'{epoch}_us_per_rating' in small:
        ratio = large[f'{epoch}_us_per_rating'] / small[f'{epoch}_us_per_rating']
        print(f'  {"training " + epoch.replace("_", " "):<20} {ratio:.2f}x (per training rating)')


def print_comparison(results: List[Dict], there: str, here: str) -> None:
  """Each component's seconds in the other checkout and here, run by run, and their ratio
  (the median of there / here over the runs: above 1.0, this checkout is faster)."""
  print(f'\nseconds {there} / {here} (each run of a case, in the order they ran):')
  cases = {}
  for result in results:
    key = (result['size'], str(result['layout']), result['mode'])
    cases.setdefault(key, {there: [], here: []})[result['checkout']].append(result)
  for (size, layout, mode), runs in cases.items():
    for name in runs[here][0]['components']:
      pairs = [(a['components'][name]['seconds'], b['components'][name]['seconds'])
               for a, b in zip(runs[there], runs[here]) if name in a['components']]
      if not pairs or max(pairs[0]) < 1:
        continue
      ratios = sorted(a / b for a, b in pairs)
      print(f'  {size:>6} {layout[-6:]:<6} {mode:<16} {name:<20} '
            + ', '.join(f'{a:.1f}/{b:.1f}' for a, b in pairs)
            + f'  median ratio {ratios[len(ratios) // 2]:.2f}')


if __name__ == '__main__':
  main()
