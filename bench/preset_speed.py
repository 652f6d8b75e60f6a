"""Time to quality of training configurations on MovieLens 100k: the Trainer as it is (its
pairs of towers one after the other) and a prototype that trains an ensemble's pairs
together, in one model and one input pass.

Each argument is one configuration, as runner_local.py's training flags (over the default
preset); prefix it with `joint:` to train its `--ensemble` pairs together. Each runs once
per seed, configurations taking turns within a seed (so the machine's noise hits them
alike); prints per run the wall time of the fit, its epochs, the kept towers' validation
top-100 (the pairs side by side) and with seen titles removed, then a table of the means.
The data is the latest run's Transform output (`make run`, or `--output-dir` of a run with
Transform):

    .venv/bin/python bench/preset_speed.py --seeds 42,1,2 -- "" "joint:"
    .venv/bin/python bench/preset_speed.py --phases -- "" "joint:"   # where an epoch goes

With `--phases`, instead of training to the end, prints for each configuration the
seconds of building the towers, the first epoch (tracing included), the next epochs and
one validation.

The joint model's loss is the sum of its pairs' losses: each pair's gradient is its own
loss's, so with Adam (per-weight step sizes) each pair trains as it would alone, on the
same batches in the same order (the Trainer's pairs each draw their own order). Early
stopping watches the pairs side by side and keeps that ensemble's best validated epoch.
"""
import argparse
import dataclasses
import statistics
import time
from typing import Dict, List

import common  # noqa: F401  (sets up paths and environment first)

import tensorflow as tf  # noqa: E402

import quality_sweep  # noqa: E402
from modules import features, metrics, model, training  # noqa: E402
from shared import names  # noqa: E402

JOINT = 'joint:'


class JointModel(tf.keras.Model):
  """Several TwoTowerModels trained as one: one batch, the sum of their losses."""

  def __init__(self, pair_models: List[model.TwoTowerModel], **kwargs):
    super().__init__(**kwargs)
    self.pair_models = pair_models
    self.loss_tracker = tf.keras.metrics.Mean(name='loss')

  @property
  def metrics(self):
    return [self.loss_tracker]

  @tf.autograph.experimental.do_not_convert
  def train_step(self, batch):
    with tf.GradientTape() as tape:
      loss = tf.add_n([pair.compute_loss_value(batch, training=True)
                       for pair in self.pair_models])
    variables = self.trainable_variables
    self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    self.loss_tracker.update_state(loss / len(self.pair_models))
    return {'loss': self.loss_tracker.result()}


class JointFit(training.Scoring):
  """An ensemble's pairs (built as the Trainer builds them, from seeds seed, seed + 1, ...)
  trained together; validated, kept and scored side by side."""

  def __init__(self, config, vocabularies, train, eval_):
    self.config = config
    self.pairs = []
    for index in range(config.ensemble):
      pair = training.TwoTowerFit(dataclasses.replace(config, seed=config.seed + index,
                                                      ensemble=1), vocabularies, train, eval_)
      # Its weights now, under its own seed (the Trainer's pair makes them in its first step).
      pair.model.compute_loss_value(next(iter(pair.dataset())), training=False)
      self.pairs.append(pair)
    first = self.pairs[0]
    for name in ('vocabularies', 'num_train', 'title_counts', 'train_inputs', 'eval_data',
                 'eval_true_index'):
      setattr(self, name, getattr(first, name))
    self.query_tower = model.SideBySide([p.query_tower for p in self.pairs])
    self.candidate_tower = model.SideBySide([p.candidate_tower for p in self.pairs])
    self.model = JointModel([p.model for p in self.pairs])
    tf.keras.utils.set_random_seed(config.seed)
    self.model.compile(optimizer=first._optimizer(),
                       steps_per_execution=training.STEPS_PER_EXECUTION)
    self.history: List[Dict] = []
    self.best_epoch = None
    self.seen = metrics.seen_titles(self.train_inputs[features.USER_INDEX].reshape(-1),
                                    self.train_inputs[features.TITLE_INDEX].reshape(-1) - 1,
                                    self.eval_data[features.USER_INDEX].reshape(-1))
    self.curve: List[tuple] = []  # (top-100, seen removed) of each validation

  def validate(self):
    """Top-K of the pairs side by side; records top-100 with seen titles removed too."""
    scores = metrics.embedding_scores(self.query_embeddings(self.eval_data),
                                      self.candidate_embeddings())
    listed, unseen = metrics.ranks_listed_and_unseen(scores, self.eval_true_index, self.seen)
    result = metrics.top_k(listed, self.config.top_ks)
    unseen_top_k = metrics.top_k(unseen, (names.GATE_K,))
    self.curve.append((result[names.GATE_KEY], unseen_top_k[names.GATE_KEY]))
    return result

  def dataset(self):
    return self.pairs[0].dataset()

  def write_summaries(self, epoch, entry):
    del epoch, entry

  def fit(self):
    progress = training.Progress(self)
    self.model.fit(self.dataset(), epochs=self.config.epochs, callbacks=[progress], verbose=0)
    self.history, self.best_epoch = progress.history, progress.best_epoch
    return self.history

  @property
  def kept_epoch(self):
    return self.best_epoch or self.history[-1]['epoch']


def build(flags: str, seed: int, vocabularies, train, eval_):
  joint = flags.startswith(JOINT)
  config = dataclasses.replace(quality_sweep.parse(flags[len(JOINT):] if joint else flags),
                               seed=seed)
  if joint:
    return JointFit(config, vocabularies, train, eval_)
  return training.make_fit(config, vocabularies, train, eval_)


def run(flags: str, seed: int, inputs) -> Dict:
  fit = build(flags, seed, *inputs)
  start = time.monotonic()
  fit.fit()
  seconds = time.monotonic() - start
  epochs = (len(fit.history) if isinstance(fit, JointFit)
            else sum(len(pair.history) for pair in fit.pairs))
  top100 = (fit.validate() if len(fit.pairs) > 1 else fit.kept_top_k())[names.GATE_KEY]
  if isinstance(fit, JointFit):
    validated = [e['epoch'] for e in fit.history if 'val_top_k' in e]
    print(f'`{flags}` seed {seed}, the pairs side by side at each validation (epoch: top-100 / '
          'seen removed): ' + ', '.join(f'{epoch}: {listed:.4f} / {unseen:.4f}' for epoch,
                                        (listed, unseen) in zip(validated, fit.curve)),
          flush=True)
  return {'seconds': seconds, 'epochs': epochs, 'kept_epoch': fit.kept_epoch,
          'top100': top100, 'unseen': quality_sweep.unseen_top100(fit)}


def phases(configurations: List[str], inputs, epochs: int) -> Dict[str, Dict[str, float]]:
  """Seconds of each configuration's phases; their epochs and validations take turns, so
  the machine's noise hits them alike. A sequential ensemble's phases are its first pair's."""
  fits, seconds = {}, {}
  for flags in configurations:
    start = time.monotonic()
    fit = build(flags, 42, *inputs)
    trained = fit if isinstance(fit, JointFit) else fit.pairs[0]
    fits[flags] = (trained, trained.dataset())
    seconds[flags] = {'build': time.monotonic() - start, 'later epochs': [], 'validations': []}
  for round_ in range(epochs + 1):
    for flags, (trained, dataset) in fits.items():
      start = time.monotonic()
      trained.model.fit(dataset, epochs=1, verbose=0)
      key = 'epoch 1' if round_ == 0 else 'later epochs'
      elapsed = time.monotonic() - start
      seconds[flags].setdefault(key, []).append(elapsed)
      start = time.monotonic()
      trained.validate()
      seconds[flags]['validations'].append(time.monotonic() - start)
  return {flags: {'build': times['build'], 'epoch 1': times['epoch 1'][0],
                  'later epoch (median)': statistics.median(times['later epochs']),
                  'validation 1': times['validations'][0],
                  'later validation (median)': statistics.median(times['validations'][1:])}
          for flags, times in seconds.items()}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--seeds', default='42,1,2', help='comma-separated first seeds')
  parser.add_argument('--output-dir', default=common.configs.DEFAULT_OUTPUT_DIR)
  parser.add_argument('--phases', action='store_true',
                      help='time the phases of training instead of training to the end')
  parser.add_argument('--phase-epochs', type=int, default=3,
                      help='epochs after the first, with --phases')
  parser.add_argument('configurations', nargs=argparse.REMAINDER)
  args = parser.parse_args()
  if args.configurations[:1] == ['--']:
    args.configurations = args.configurations[1:]
  _, vocabularies, train, eval_ = common.latest_training_inputs(args.output_dir)
  inputs = (vocabularies, train, eval_)
  if args.phases:
    for flags, seconds in phases(args.configurations, inputs, args.phase_epochs).items():
      print(f'`{flags}`: ' + ', '.join(f'{name} {value:.2f} s' for name, value in seconds.items()),
            flush=True)
    return
  results = {flags: [] for flags in args.configurations}
  for seed in (int(seed) for seed in args.seeds.split(',')):
    for flags in args.configurations:
      result = run(flags, seed, inputs)
      results[flags].append(result)
      print(f'`{flags}` seed {seed}: {result["seconds"]:.1f} s, {result["epochs"]} epochs, '
            f'kept epoch {result["kept_epoch"]}, top-100 {result["top100"]:.4f}, seen removed '
            f'{result["unseen"]:.4f}', flush=True)
  print('\n| configuration | fit seconds, mean | top-100 each seed | mean | seen removed, mean |\n'
        '| --- | --- | --- | --- | --- |')
  for flags, runs in results.items():
    print(f'| `{flags}` | {statistics.mean(r["seconds"] for r in runs):.0f} | '
          + ', '.join(f'{r["top100"]:.4f}' for r in runs)
          + f' | {statistics.mean(r["top100"] for r in runs):.4f} | '
          f'{statistics.mean(r["unseen"] for r in runs):.4f} |')


if __name__ == '__main__':
  main()
