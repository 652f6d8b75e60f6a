"""Runs the pipeline once per layer-size setting and compares their validation curves.

    .venv/bin/python -m tools.experiment --preset tutorial          # the tutorial's depths
    .venv/bin/python -m tools.experiment --layer-sizes-list 32 64,32 --epochs 50

Every run is a separate pipeline run in ML Metadata (ExampleGen and Transform come from the
cache after the first) that stops after the Trainer (`--until CatalogTrainer`): an
experiment compares validation curves, and pushes no model. It writes one PNG with every
run's validation top-100 curve and a Markdown table of the final top-K figures to
OUTPUT_DIR/experiments/, and prints the table.
Any other flag of runner_local.py applies to every run.
"""
import argparse
import json
import os
import sys
import time
from typing import Dict, List

from shared import env, names

env.use_legacy_keras()  # before the pipeline imports TensorFlow

from pipeline import configs, local, metadata  # noqa: E402

DEPTHS = ('32', '64,32', '128,64,32')  # the tutorial's comparison


def history_of_latest_run(config: configs.LocalConfig) -> Dict:
  store = metadata.connect(config.local.metadata_path)
  run = metadata.runs(store, config.run.pipeline_name)[-1]
  model_run = next(o.uri for o in metadata.run_outputs(store, config.run.pipeline_name, run)
                   if o.key == 'model_run')
  with open(os.path.join(model_run, names.HISTORY_FILE)) as file:
    return {'run': run.name, 'model_run': model_run, **json.load(file)}


def table(results: Dict[str, Dict]) -> str:
  ks = tuple(str(k) for k in names.TOP_KS)
  lines = ['| layers | ' + ' | '.join(f'top-{k}' for k in ks) + ' | pipeline run |',
           '| --- | ' + ' | '.join('---' for _ in ks) + ' | --- |']
  for name, result in results.items():
    figures = result['final_val_top_k']
    lines.append(f'| {name} | ' + ' | '.join(f'{figures[k]:.4f}' for k in ks)
                 + f' | {result["run"]} |')
  baseline = next(iter(results.values()))['popularity_baseline_top_k']
  lines.append('| most popular (baseline) | '
               + ' | '.join(f'{baseline[k]:.4f}' for k in ks) + ' | |')
  return '\n'.join(lines)


def main(argv: List[str] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--layer-sizes-list', nargs='+', default=list(DEPTHS),
                      help='one run per entry (default: %(default)s)')
  known, passthrough = parser.parse_known_args(argv)
  results = {}
  for sizes in known.layer_sizes_list:
    argv_run = ['--until', names.TRAINER] + passthrough + ['--layer-sizes', sizes]
    print(f'\n=== layers [{sizes}] ===', flush=True)
    config = configs.parse_args(argv_run)
    if local.run_and_report(config) != 0:
      print(f'the run with layers [{sizes}] failed; stopping', file=sys.stderr)
      return 1
    results[f'[{sizes.replace(",", ", ")}]'] = history_of_latest_run(config)

  from modules import plots
  config = configs.parse_args(passthrough)
  directory = os.path.join(config.local.output_dir, 'experiments')
  os.makedirs(directory, exist_ok=True)
  stem = os.path.join(directory, time.strftime('layers-%Y%m%d-%H%M%S'))
  baseline = next(iter(results.values()))['popularity_baseline_top_k'][names.GATE_KEY]
  plots.plot_validation_curves({name: r['history'] for name, r in results.items()}, baseline,
                               stem + '.png')
  with open(stem + '.md', 'w') as file:
    file.write(f'Command: python -m tools.experiment {" ".join(argv or sys.argv[1:])}\n\n'
               + table(results) + '\n')
  print('\n' + table(results) + f'\n\nCurves: {stem}.png\nTable: {stem}.md')
  return 0


if __name__ == '__main__':
  sys.exit(main())
