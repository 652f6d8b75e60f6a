"""The Trainer's two inputs side by side: in memory against streamed from the TFRecords.

Trains the same configuration on the latest run's Transform output (default: outputs/; a
scale run's kept outputs with --output-dir) from each input: the in-memory arrays and the
stream from the files. Prints per input the median seconds of an epoch (or of --steps
training steps, for data whose epoch takes long), microseconds per training rating and their
ratio, after a warm-up of the same length, the inputs taking turns; and the peak resident
memory of the process, which with one input per invocation (`--modes memory`, then
`--modes stream`) is that input's.

    .venv/bin/python bench/input_modes.py
    .venv/bin/python bench/input_modes.py --modes memory --steps 200 --epochs 1 \\
        --output-dir /tmp/movielens-scale/run-25m-csv-in_memory.outputs \\
        --flags "--preset large --batch-size 8192"
"""
import argparse
import functools
import os

import common  # noqa: F401  (sets up paths and environment first)

from modules import fitting  # noqa: E402
from quality_sweep import parse  # noqa: E402
from scale import MemorySampler  # noqa: E402
from training_speed import seconds_per_epoch  # noqa: E402


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--output-dir', default=common.configs.DEFAULT_OUTPUT_DIR,
                      help="a run's output directory (default: %(default)s)")
  parser.add_argument('--flags', default='--preset large',
                      help='training flags, as runner_local.py takes them (default: %(default)s)')
  parser.add_argument('--modes', default='memory,stream', help='inputs: memory, stream')
  parser.add_argument('--epochs', type=int, default=3, help='timed epochs (or --steps) per input')
  parser.add_argument('--steps', type=int, default=0,
                      help='time this many training steps instead of whole epochs')
  args = parser.parse_args()

  sampler = MemorySampler(os.getpid())
  sampler.start()
  paths = {}
  for mode in args.modes.split(','):
    _, vocabularies, train, eval_ = common.latest_training_inputs(args.output_dir,
                                                                  input_mode=mode)
    pair = fitting.TowerPair(parse(args.flags), vocabularies, train, eval_)
    paths[mode] = functools.partial(pair.model.fit, pair.dataset(), epochs=1,
                                    steps_per_epoch=args.steps or pair.steps_per_epoch(),
                                    verbose=0)
  ratings = args.steps * pair.config.batch_size if args.steps else pair.num_train
  per_pass = seconds_per_epoch(paths, args.epochs)
  sampler.stop()
  unit = f'{args.steps} steps' if args.steps else 'epoch'
  print(f'\nseconds per {unit} ({ratings:,} of {pair.num_train:,} training ratings, flags '
        f'"{args.flags}"; median of {args.epochs} after a warm-up, the inputs taking turns); '
        f'peak memory of the process {sampler.peak() / 2**30:.2f} GiB')
  first = per_pass[next(iter(per_pass))]
  for mode, seconds in per_pass.items():
    print(f'  {mode:<7} {seconds:8.2f} s  {seconds / ratings * 1e6:7.1f} us/rating  '
          f'{seconds / first:5.2f}x the {next(iter(per_pass))} input')


if __name__ == '__main__':
  main()
