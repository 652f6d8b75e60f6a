r"""StatisticsGen on all the examples against TFDV's sample of them (`--statistics-sample-mb`).

Runs `runner_local.py --until ValidationGate --no-cache` on one release, alternately with
sampling off (`--statistics-sample-mb 0`, the whole split) and with the given budget, each in
a fresh process and output directory, and prints StatisticsGen's seconds side by side with
their ratio, the sample rate, and whether the sampled run's schema has the same features and
types as the full one's (SchemaGen) and whether its ExampleValidator found anomalies (the
ValidationGate would have failed the run: it did not if this prints). TFDV samples the
decoded record batches: every example is still read and decoded, so the cost of a tiny
sample is what sampling cannot save.

    .venv/bin/python bench/statistics_sample.py --data-dir /tmp/scale-levers/r1m \
        --sample-mb 2.3,0.025 --repeat 2

At 1M ratings (24.6 MB of files) a budget of 2.3 MB reads 9.3% of the examples, the share
64 MB (the default) gives the synthetic 25M release (678 MB).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pipeline import configs, metadata  # noqa: E402
from shared import names  # noqa: E402


def run(data_dir: str, sample_mb: float, outputs: str) -> dict:
  """One run through the ValidationGate; StatisticsGen's seconds and SchemaGen's schema."""
  from tensorflow_metadata.proto.v0 import schema_pb2
  from google.protobuf import text_format
  command = [sys.executable, os.path.join(ROOT, 'runner_local.py'), '--data-dir', data_dir,
             '--output-dir', outputs, '--no-cache', '--until', names.VALIDATION_GATE,
             '--statistics-sample-mb', str(sample_mb)]
  with open(os.path.join(outputs, 'run.log'), 'w') as log:
    code = subprocess.call(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
  if code:
    raise SystemExit(f'the run failed (exit {code}; anomalies stop it at the ValidationGate): '
                     f'see {outputs}/run.log')
  store = metadata.connect(os.path.join(outputs, 'metadata.sqlite'))
  last = metadata.runs(store, names.PIPELINE_NAME)[-1]
  seconds = {e.component: e.finished - e.started
             for e in metadata.run_executions(store, names.PIPELINE_NAME, last)}
  schema_dir = [o.uri for o in metadata.run_outputs(store, names.PIPELINE_NAME, last)
                if o.component == names.SCHEMA_GEN and o.key == 'schema'][0]
  schema = text_format.Parse(open(os.path.join(schema_dir, 'schema.pbtxt')).read(),
                             schema_pb2.Schema())
  # A domain's bounds or values inferred from a sample would flag the values it missed.
  features = {f.name: (schema_pb2.FeatureType.Name(f.type), f.WhichOneof('shape_type'),
                       f.WhichOneof('domain_info'),
                       text_format.MessageToString(f.int_domain, as_one_line=True) or None)
              for f in schema.feature}
  domains = {d.name: len(d.value) for d in schema.string_domain}
  return {'seconds': seconds, 'features': features, 'domains': domains}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data-dir', required=True, help='the release to read')
  parser.add_argument('--sample-mb', default='2.3,0.025',
                      help="--statistics-sample-mb of the sampled runs, comma-separated (a "
                      "tiny one shows the cost TFDV's sampling cannot save: reading and "
                      'decoding every example, and the fixed costs)')
  parser.add_argument('--repeat', type=int, default=1, help='pairs of runs, alternating')
  args = parser.parse_args()
  budgets = [float(mb) for mb in args.sample_mb.split(',')]
  size = configs.data_bytes(args.data_dir)
  rates = [configs.Statistics(statistics_sample_mb=mb).sample_rate(size) for mb in budgets]
  print(f'{size / 2**20:.1f} MB of files; ' + ', '.join(
      f'--statistics-sample-mb {mb} reads {rate:.2%} of the examples'
      for mb, rate in zip(budgets, rates)))
  pairs = []
  for _ in range(args.repeat):
    pair = []
    for sample_mb in (0, *budgets):
      with tempfile.TemporaryDirectory(prefix='statistics-sample-') as outputs:
        start = time.time()
        pair.append(run(args.data_dir, sample_mb, outputs))
        print(f'{time.strftime("%H:%M:%S")} --statistics-sample-mb {sample_mb}: '
              f'{time.time() - start:.0f} s, StatisticsGen '
              f'{pair[-1]["seconds"][names.STATISTICS_GEN]:.1f} s', flush=True)
    pairs.append(pair)
  print(f'\nStatisticsGen seconds, all the examples and each sample rate, and against all:')
  print(f'{"all":>9} ' + ' '.join(f'{f"{rate:.2%}":>17}' for rate in rates))
  for full, *sampled in pairs:
    a = full['seconds'][names.STATISTICS_GEN]
    print(f'{a:9.1f} ' + ' '.join(
        f'{b["seconds"][names.STATISTICS_GEN]:8.1f} ({b["seconds"][names.STATISTICS_GEN] / a:.2f}x)'
        .rjust(17) for b in sampled))
  full, sampled = pairs[-1][0], pairs[-1][1]
  print(f'\nschema features and types the same: {full["features"] == sampled["features"]}')
  for name in sorted(set(full['features']) | set(sampled['features'])):
    print(f'  {name:<24} all {full["features"].get(name)}  sampled '
          f'{sampled["features"].get(name)}')
  print(f'string domains (values): all {full["domains"]}, sampled {sampled["domains"]}')
  print('ExampleValidator: no anomalies in either run (the ValidationGate passed)')


if __name__ == '__main__':
  main()
