"""Training speed: the tutorial's code path against our Trainer, in one process.

Prints, side by side:
  (i)  seconds per epoch of (a) the tutorial's code (TFRS Retrieval task, Keras
       preprocessing layers, model.fit) and (b) our Trainer's training step with the same
       settings (the `tutorial` preset) and with the `large` preset, after one
       warm-up epoch each, and their ratios;
  (ii) time to quality: wall time from the start of training until validation top-100
       first reaches TARGET (the tutorial's final [64, 32] figure, 0.287), for the
       tutorial's recipe (validation every 5 epochs) and for ours (`large` preset,
       validation every epoch: it costs ~0.1 s here).
The data is the latest pipeline run's (run `make run` first).

    .venv/bin/python bench/training_speed.py                  # everything (~25 minutes)
    .venv/bin/python bench/training_speed.py --skip-tutorial-quality   # per-epoch only
"""
import argparse
import functools
import statistics
import time
from typing import Callable, Dict

import common  # noqa: F401  (sets up paths and environment first)

import tensorflow as tf  # noqa: E402

import tutorial_model  # noqa: E402
from modules import fitting, hparams  # noqa: E402
from shared import names  # noqa: E402

TARGET = 0.287
TUTORIAL_METRIC = 'val_factorized_top_k/top_100_categorical_accuracy'


def seconds_per_epoch(fit_one_epoch: Dict[str, Callable], epochs: int) -> Dict[str, float]:
  """Median seconds of one epoch of each code path, timed in turn so noise hits all alike."""
  for fit in fit_one_epoch.values():
    fit()  # warm-up: tracing and the first pass
  times = {name: [] for name in fit_one_epoch}
  for _ in range(epochs):
    for name, fit in fit_one_epoch.items():
      start = time.monotonic()
      fit()
      times[name].append(time.monotonic() - start)
  return {name: statistics.median(seconds) for name, seconds in times.items()}


class StopAtTarget(tf.keras.callbacks.Callback):
  """Stops the tutorial's fit when validation top-100 first reaches the target."""

  def __init__(self):
    super().__init__()
    self.reached = None

  def on_train_begin(self, logs=None):
    self.start = time.monotonic()

  def on_epoch_end(self, epoch, logs=None):
    value = (logs or {}).get(TUTORIAL_METRIC)
    if value is not None:
      print(f'  tutorial epoch {epoch + 1}: val top-100 {value:.4f} '
            f'({time.monotonic() - self.start:.0f} s)', flush=True)
      if value >= TARGET:
        self.reached = (epoch + 1, time.monotonic() - self.start, value)
        self.model.stop_training = True


def our_time_to_quality(vocabularies, train, eval_, max_epochs: int):
  config = hparams.preset('large', epochs=max_epochs, validation_freq=1)
  pair = fitting.TowerPair(config, vocabularies, train, eval_)
  dataset = pair.dataset()
  start = time.monotonic()
  for epoch in range(1, max_epochs + 1):
    pair.model.fit(dataset, epochs=1, verbose=0)
    value = pair.validate()[names.GATE_KEY]
    if value >= TARGET:
      return epoch, time.monotonic() - start, value
  return None


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--epochs', type=int, default=5, help='timed epochs per code path')
  parser.add_argument('--tutorial-max-epochs', type=int, default=300)
  parser.add_argument('--output-dir', default=common.configs.DEFAULT_OUTPUT_DIR,
                      help='a run\'s output directory (default: %(default)s)')
  parser.add_argument('--skip-tutorial-quality', action='store_true',
                      help='skip the tutorial recipe\'s time to quality (the long part)')
  args = parser.parse_args()

  _, vocabularies, train, eval_ = common.latest_training_inputs(args.output_dir)
  raw_train, raw_eval, titles = common.latest_raw_examples(args.output_dir)

  tf.keras.utils.set_random_seed(42)
  tutorial = tutorial_model.build([64, 32], raw_train, raw_eval, titles)
  cached_train, cached_test = tutorial_model.datasets(raw_train, raw_eval)
  paths = {'tutorial code (TFRS)': lambda: tutorial.fit(cached_train, epochs=1, verbose=0)}
  for name in ('tutorial', 'large'):
    pair = fitting.TowerPair(hparams.preset(name), vocabularies, train, eval_)
    paths[f'ours, {name} preset'] = functools.partial(
        pair.model.fit, pair.dataset(), epochs=1, verbose=0)
  per_epoch = seconds_per_epoch(paths, args.epochs)

  base = per_epoch['tutorial code (TFRS)']
  print(f'\n(i) seconds per epoch ([64, 32], batch 2048, {len(train["movie_title"]):,} '
        f'ratings; median of {args.epochs}, after a warm-up epoch, paths taking turns)')
  for name, seconds in per_epoch.items():
    print(f'  {name:<26} {seconds:6.2f} s   {base / seconds:5.2f}x faster than the tutorial')

  print(f'\n(ii) time to validation top-100 >= {TARGET}')
  ours = our_time_to_quality(vocabularies, train, eval_, max_epochs=40)
  if ours is None:
    print('  ours (large): not reached in 40 epochs')
    return
  print(f'  ours (large): epoch {ours[0]}, {ours[1]:.1f} s (top-100 {ours[2]:.4f})')
  if args.skip_tutorial_quality:
    return
  tf.keras.utils.set_random_seed(42)
  tutorial = tutorial_model.build([64, 32], raw_train, raw_eval, titles)
  stop = StopAtTarget()
  start = time.monotonic()
  tutorial.fit(cached_train, validation_data=cached_test, validation_freq=5,
               epochs=args.tutorial_max_epochs, callbacks=[stop], verbose=0)
  if stop.reached:
    epoch, seconds, value = stop.reached
    print(f'  tutorial recipe:    epoch {epoch}, {seconds:.1f} s (top-100 {value:.4f})')
    print(f'  ours reaches it {seconds / ours[1]:.0f}x sooner')
  else:
    seconds = time.monotonic() - start
    print(f'  tutorial recipe:    not reached in {args.tutorial_max_epochs} epochs '
          f'({seconds:.0f} s); ours is at least {seconds / ours[1]:.0f}x sooner')


if __name__ == '__main__':
  main()
