"""What every run produced, read from ML Metadata: `python -m pipeline.inspect COMMAND`.

    runs                  every run: start, duration, state, each component ran or cached
    artifacts [--run R]   each component's outputs (type, URI, key properties)
    metrics [--run R]     the evaluation (top-K with and without seen titles, baselines,
                          slices) and the gate's checks
    compare [R1 R2]       two runs side by side: settings, metrics, verdict (latest two)
    lineage [--run R]     the pushed model (or --artifact ID) back to the data it came from
    report [--run R]      a self-contained HTML report of a run (pipeline/report.py)

R is a run's number in `runs` (1 is the first, -1 the latest) or its run id. Add --json
for machine-readable output. Reads OUTPUT_DIR/metadata.sqlite (--output-dir,
--metadata-path) of a local run.
"""
import argparse
import datetime
import json
import os
import sys
from typing import Dict, List, Optional, Tuple

from pipeline import configs, metadata

EVALUATOR, TRAINER, PUSHER = 'RetrievalEvaluator', 'CatalogTrainer', 'ServingPusher'
EVALUATION_FILE = 'evaluation.json'  # RetrievalEvaluator's (not imported: that loads TF)
# Properties every artifact carries that say nothing about its content.
_NOISE = {'tfx_version', 'state', 'is_external', 'producer_component', 'name',
          'payload_format', 'file_format', 'span', 'version', 'stats_dashboard_link'}


class InspectionError(Exception):
  """A question the metadata cannot answer; the message says why and what to do."""


class Inspector:
  """The runs of one pipeline in one ML Metadata store."""

  def __init__(self, metadata_path: str, pipeline_name: str):
    if not os.path.exists(metadata_path):
      raise InspectionError(f'no ML Metadata at {metadata_path}: run the pipeline first '
                            '(make run), or point --output-dir / --metadata-path at a run\'s')
    self.store = metadata.connect(metadata_path)
    self.pipeline_name = pipeline_name
    self.contexts = metadata.runs(self.store, pipeline_name)
    if not self.contexts:
      raise InspectionError(f'{metadata_path} holds no run of pipeline {pipeline_name!r}')
    self.components = metadata.components(self.store, pipeline_name)

  def select(self, selector: Optional[str] = None) -> Tuple[int, object]:
    """(number, context) of a run given as a number (negative from the end) or a run id."""
    count = len(self.contexts)
    if selector in (None, ''):
      return count, self.contexts[-1]
    for number, context in enumerate(self.contexts, start=1):
      if context.name == selector:
        return number, context
    try:
      number = int(selector)
    except ValueError:
      number = 0
    if number < 0:
      number += count + 1
    if not 1 <= number <= count:
      raise InspectionError(f'no run {selector!r}: this pipeline has runs 1 to {count} '
                            '(see `python -m pipeline.inspect runs`)')
    return number, self.contexts[number - 1]

  # runs ------------------------------------------------------------------------------
  def run_summary(self, number: int, context) -> Dict:
    """A run's state and each component's part in it.

    `failed`: a component failed; the components it never reached are listed as `not run`.
    `interrupted`: an execution was left running (the process was stopped). `complete`:
    every component of the run ran or was reused; components the pipeline did not have
    then (it changed between runs) are not listed.
    """
    executions = metadata.run_executions(self.store, self.pipeline_name, context)
    by_component = {e.component: e for e in executions}
    named = {'COMPLETE': 'ran', 'CACHED': 'cached', 'FAILED': 'failed'}
    states = {e.component: named.get(e.state, e.state.lower()) for e in executions}
    if 'failed' in states.values():
      state = 'failed'
    elif set(states.values()) <= {'ran', 'cached'}:
      state = 'complete'
    else:
      state = 'interrupted'
    listed = self.components if state != 'complete' else [
        c for c in self.components if c in states]
    components = [{'component': name, 'state': states.get(name, 'not run'),
                   'seconds': round(by_component[name].finished - by_component[name].started, 1)
                   if name in by_component else None} for name in listed]
    started = min((e.started for e in executions), default=context.create_time_since_epoch
                  / 1000)
    finished = max((e.finished for e in executions), default=started)
    return {'run': number, 'run_id': context.name, 'state': state,
            'partial': any(c['state'] == 'not run' for c in components),
            'started': _time(started), 'seconds': round(finished - started, 1),
            'components_done': sum(c['state'] in ('ran', 'cached') for c in components),
            'components': components}

  def runs(self) -> List[Dict]:
    return [self.run_summary(number, context)
            for number, context in enumerate(self.contexts, start=1)]

  # artifacts -------------------------------------------------------------------------
  def outputs(self, context) -> List[metadata.Output]:
    return metadata.run_outputs(self.store, self.pipeline_name, context)

  def artifacts(self, selector: Optional[str] = None) -> Dict:
    number, context = self.select(selector)
    return {'run': number, 'run_id': context.name, 'artifacts': [
        {'component': o.component, 'key': o.key, 'type': o.type, 'uri': o.uri, 'id': o.id,
         'produced': 'reused from an earlier run' if o.state == 'CACHED' else 'this run',
         'properties': {k: v for k, v in sorted(o.properties.items()) if k not in _NOISE}}
        for o in self.outputs(context)]}

  def output(self, context, component: str, key: str) -> Optional[metadata.Output]:
    return next((o for o in self.outputs(context)
                 if o.component == component and o.key == key), None)

  # metrics ---------------------------------------------------------------------------
  def evaluation(self, selector: Optional[str] = None) -> Dict:
    number, context = self.select(selector)
    output = self.output(context, EVALUATOR, 'evaluation')
    if output is None:
      summary = self.run_summary(number, context)
      raise InspectionError(
          f'run {number} has no evaluation: {EVALUATOR} did not run '
          f'(run state: {summary["state"]}, {summary["components_done"]} of '
          f'{len(summary["components"])} components done)')
    with open(os.path.join(output.uri, EVALUATION_FILE)) as file:
      report = json.load(file)
    pushed = self.output(context, PUSHER, 'pushed_model')
    report['pushed'] = ({'version': pushed.properties.get('pushed_version'),
                         'destination': pushed.properties.get('pushed_destination')}
                        if pushed and pushed.properties.get('pushed') == 1 else None)
    return {'run': number, 'run_id': context.name, 'evaluation_uri': output.uri, **report}

  # compare ---------------------------------------------------------------------------
  def settings(self, context) -> Dict[str, object]:
    """The settings a run's components ran with, flattened to 'Component.setting'."""
    flat = {}
    for execution in metadata.run_executions(self.store, self.pipeline_name, context):
      for key, value in execution.properties.items():
        if key.startswith('__') or key in ('span', 'version', 'input_fingerprint'):
          continue
        if isinstance(value, str) and value.startswith('{'):
          try:
            value = json.loads(value)
          except ValueError:
            pass
        for name, item in _flatten(value, f'{execution.component}.{key}').items():
          flat[name] = item
    return flat

  def compare(self, first: Optional[str] = None, second: Optional[str] = None) -> Dict:
    if first is None and second is None:
      if len(self.contexts) < 2:
        raise InspectionError('only one run so far: nothing to compare it with')
      first, second = '-2', '-1'
    elif second is None:
      second = '-1'
    runs = [self.select(first), self.select(second)]
    settings = [self.settings(context) for _, context in runs]
    differing = {key: [s.get(key) for s in settings]
                 for key in sorted(set(settings[0]) | set(settings[1]))
                 if settings[0].get(key) != settings[1].get(key)
                 and not key.endswith(('modules_fingerprint', 'code_version'))}
    metrics = []
    for number, _ in runs:
      try:
        evaluation = self.evaluation(str(number))
        metrics.append({'top_k': evaluation['top_k'], 'top_k_unseen': evaluation['top_k_unseen'],
                        'blessed': evaluation['gate']['blessed'],
                        'failed_checks': [c['name'] for c in evaluation['gate']['checks']
                                          if not c['passed']],
                        'pushed': evaluation['pushed']})
      except InspectionError as error:
        metrics.append({'missing': str(error)})
    return {'runs': [{'run': n, 'run_id': c.name} for n, c in runs],
            'settings_that_differ': differing, 'metrics': metrics}

  # lineage ---------------------------------------------------------------------------
  def lineage(self, selector: Optional[str] = None, artifact_id: Optional[int] = None) -> Dict:
    number, context = self.select(selector)
    if artifact_id is None:
      pushed = self.output(context, PUSHER, 'pushed_model')
      start = (pushed if pushed and pushed.properties.get('pushed') == 1
               else self.output(context, TRAINER, 'model'))
      if start is None:
        raise InspectionError(f'run {number} produced no model to trace: pass --artifact ID '
                              '(ids are in `python -m pipeline.inspect artifacts`)')
      artifact_id = start.id
    producer = metadata.producer_of(self.store, self.pipeline_name, artifact_id)
    if producer is None:
      raise InspectionError(f'no artifact {artifact_id} produced by this pipeline')
    run_of = self._run_numbers()
    steps, seen, queue = [], set(), [producer]
    while queue:
      execution = queue.pop(0)
      if execution.id in seen:
        continue
      seen.add(execution.id)
      links = metadata.inputs_of(self.store, self.pipeline_name, execution)
      step = {'component': execution.component, 'execution': execution.id,
              'run': run_of.get(execution.id), 'inputs': [
                  {'key': link.key, 'artifact': link.artifact.id, 'type': link.artifact.type,
                   'uri': link.artifact.uri,
                   'from': link.producer.component if link.producer else None}
                  for link in links]}
      if not links and 'input_base' in execution.properties:  # ExampleGen: the raw data
        outputs = [o for o in metadata.execution_outputs(self.store, execution)
                   if o.key == 'examples']
        step['data'] = {'directory': execution.properties['input_base'],
                        **{k: outputs[0].properties.get(k)
                           for k in ('data_source', 'data_layout') if outputs}}
      steps.append(step)
      queue.extend(link.producer for link in links if link.producer)
    steps.sort(key=lambda step: -step['execution'])  # newest first: back towards the data
    return {'artifact': artifact_id, 'steps': steps}

  def _run_numbers(self) -> Dict[int, int]:
    """Execution id -> the number of the run it happened in."""
    numbers = {}
    for number, context in enumerate(self.contexts, start=1):
      for execution in self.store.get_executions_by_context(context.id):
        numbers.setdefault(execution.id, number)
    return numbers


def _flatten(value, prefix: str) -> Dict[str, object]:
  if isinstance(value, dict):
    flat = {}
    for key, item in value.items():
      flat.update(_flatten(item, f'{prefix}.{key}'))
    return flat
  return {prefix: value}


def _time(seconds: float) -> str:
  return datetime.datetime.fromtimestamp(seconds).strftime('%Y-%m-%d %H:%M:%S')


# Text output ---------------------------------------------------------------------------

def _table(rows: List[List[object]], header: List[str]) -> str:
  cells = [[str(c) for c in header]] + [[_cell(c) for c in row] for row in rows]
  widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
  lines = ['  '.join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
  lines.insert(1, '  '.join('-' * w for w in widths))
  return '\n'.join(lines)


def _cell(value) -> str:
  if isinstance(value, float):
    return f'{value:.4f}'
  return '' if value is None else str(value)


def format_runs(runs: List[Dict]) -> str:
  rows = []
  for r in runs:
    by_state: Dict[str, List[str]] = {}
    for c in r['components']:
      by_state.setdefault(c['state'], []).append(c['component'])
    state = f'{r["state"]} (partial)' if r['partial'] else r['state']
    rows.append([r['run'], r['run_id'], r['started'], f'{r["seconds"]:.0f} s', state,
                 f'{r["components_done"]}/{len(r["components"])}',
                 len(by_state.get('ran', [])), len(by_state.get('cached', [])),
                 '; '.join(f'{state}: {", ".join(names)}' for state, names in by_state.items()
                           if state not in ('ran', 'cached'))])
  return _table(rows, ['run', 'run id', 'started', 'took', 'state', 'done', 'ran', 'cached',
                       'failed or not run'])


def format_artifacts(result: Dict) -> str:
  rows = [[a['component'], a['key'], a['type'], a['id'], a['produced'], a['uri'],
           ', '.join(f'{k}={_cell(v)}' for k, v in a['properties'].items())]
          for a in result['artifacts']]
  return (f'Run {result["run"]} ({result["run_id"]}):\n'
          + _table(rows, ['component', 'output', 'type', 'id', 'produced', 'uri',
                          'properties']))


ROW_NAMES = {'model': 'this model', 'popularity': 'most popular',
             'unknown_user': 'as unknown user', 'baseline_model': 'latest blessed model'}
Table = Tuple[str, List[str], List[List[object]]]  # title, header, rows


def top_k_tables(evaluation: Dict) -> List[Table]:
  """An evaluation's top-K accuracy of each ranking, as listed and with seen titles removed."""
  ks = list(evaluation['top_k']['model'])
  return [(title, [''] + [f'K={k}' for k in ks],
           [[ROW_NAMES.get(name, name)] + [values[k] for k in ks]
            for name, values in evaluation[key].items()])
          for key, title in (('top_k', 'top-K accuracy'),
                             ('top_k_unseen', 'top-K accuracy, seen titles removed'))]


def slice_tables(evaluation: Dict) -> List[Table]:
  """An evaluation's top-100 accuracy within each slice of each sliced feature."""
  header = ['value', 'ratings', 'model', 'most popular', 'model, seen removed',
            'most popular, seen removed']
  return [(f'top-100 by {name}', header,
           [[r['value'], r['count'], r['model'], r['popularity'], r['model_unseen'],
             r['popularity_unseen']] for r in rows])
          for name, rows in evaluation['slices'].items()]


def format_metrics(result: Dict) -> str:
  parts = [f'Run {result["run"]} ({result["run_id"]}): {result["num_eval_ratings"]:,} held-out '
           f'ratings, {result["num_candidates"]:,} candidates; {result["evaluation_uri"]}']
  for title, header, rows in top_k_tables(result) + slice_tables(result):
    parts.append(f'\n{title}:\n' + _table(rows, header))
  gate = result['gate']
  parts.append('\ngate: ' + ('BLESSED' if gate['blessed'] else 'NOT BLESSED'))
  parts.extend(f'  {"PASS" if c["passed"] else "FAIL"}  {c["explanation"]}'
               for c in gate['checks'])
  pushed = result['pushed']
  parts.append(f'pushed: version {pushed["version"]} at {pushed["destination"]}' if pushed
               else 'pushed: nothing')
  return '\n'.join(parts)


def format_compare(result: Dict) -> str:
  first, second = result['runs']
  header = ['', f'run {first["run"]}', f'run {second["run"]}']
  parts = [f'Run {first["run"]} ({first["run_id"]}) against run {second["run"]} '
           f'({second["run_id"]})']
  rows = [[key, _cell(a), _cell(b)] for key, (a, b) in result['settings_that_differ'].items()]
  parts.append('\nsettings that differ:\n' + (_table(rows, header) if rows else '  none'))
  a, b = result['metrics']
  if 'missing' in a or 'missing' in b:
    parts.append('\n' + '\n'.join(m['missing'] for m in (a, b) if 'missing' in m))
  else:
    rows = [[f'{title} top-{k}', a[section]['model'][k], b[section]['model'][k]]
            for section, title in (('top_k', 'model'), ('top_k_unseen', 'model, seen removed'))
            for k in a[section]['model']]
    rows.append(['most popular top-100', a['top_k']['popularity']['100'],
                 b['top_k']['popularity']['100']])
    rows.append(['blessed', a['blessed'], b['blessed']])
    rows.append(['failed checks', ', '.join(a['failed_checks']) or '-',
                 ', '.join(b['failed_checks']) or '-'])
    rows.append(['pushed version', (a['pushed'] or {}).get('version', '-'),
                 (b['pushed'] or {}).get('version', '-')])
    parts.append('\nmetrics:\n' + _table(rows, header))
  return '\n'.join(parts)


def format_lineage(result: Dict) -> str:
  lines = [f'Lineage of artifact {result["artifact"]}, newest step first:']
  for step in result['steps']:
    where = f' (run {step["run"]})' if step['run'] else ''
    lines.append(f'  {step["component"]}{where}, execution {step["execution"]}')
    for link in step['inputs']:
      lines.append(f'    <- {link["key"]}: {link["type"]} {link["artifact"]} from '
                   f'{link["from"]}  {link["uri"]}')
    if 'data' in step:
      data = step['data']
      lines.append(f'    <- data: {data["directory"]} ({data.get("data_layout")}; '
                   f'{data.get("data_source")})')
  return '\n'.join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n')[0], epilog=__doc__.split('\n', 2)[2],
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--output-dir', default=configs.DEFAULT_OUTPUT_DIR,
                      help='the local run\'s output directory (default: %(default)s)')
  parser.add_argument('--metadata-path', help='ML Metadata file (default: '
                      'OUTPUT_DIR/metadata.sqlite)')
  parser.add_argument('--pipeline-name', default='movielens-tfx')
  parser.add_argument('--json', action='store_true', help='machine-readable output')
  commands = parser.add_subparsers(dest='command', required=True)
  commands.add_parser('runs', help='every run, its state and components')
  for name, text in (('artifacts', 'outputs of a run'), ('metrics', 'evaluation of a run'),
                     ('lineage', 'a model back to its data')):
    command = commands.add_parser(name, help=text)
    command.add_argument('--run', help='run number or id (default: the latest)')
  commands.choices['lineage'].add_argument('--artifact', type=int,
                                           help='trace this artifact id instead')
  compare = commands.add_parser('compare', help='two runs side by side')
  compare.add_argument('first', nargs='?', help='run number or id (default: the one before '
                       'the latest)')
  compare.add_argument('second', nargs='?', help='(default: the latest)')
  report = commands.add_parser('report', help='a self-contained HTML report of a run')
  report.add_argument('--run', help='run number or id (default: the latest)')
  report.add_argument('--out', help='the HTML file, or a directory for run-N.html (default: '
                      'reports/ beside the metadata file)')
  for command in commands.choices.values():  # the common options after the command work too
    command.add_argument('--json', action='store_true', default=argparse.SUPPRESS,
                         help='machine-readable output')
    for name in ('--output-dir', '--metadata-path', '--pipeline-name'):
      command.add_argument(name, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)

  metadata_path = args.metadata_path or configs.PipelineConfig(
      output_dir=args.output_dir).metadata_path
  try:
    inspector = Inspector(metadata_path, args.pipeline_name)
    if args.command == 'runs':
      result, text = inspector.runs(), format_runs
    elif args.command == 'artifacts':
      result, text = inspector.artifacts(args.run), format_artifacts
    elif args.command == 'metrics':
      result, text = inspector.evaluation(args.run), format_metrics
    elif args.command == 'compare':
      result, text = inspector.compare(args.first, args.second), format_compare
    elif args.command == 'lineage':
      result, text = inspector.lineage(args.run, args.artifact), format_lineage
    else:
      from pipeline import report as run_report
      path = run_report.write(inspector, args.run, args.out or os.path.join(
          os.path.dirname(metadata_path), 'reports'))
      result, text = {'report': path}, lambda r: f'Report written: {r["report"]}'
  except InspectionError as error:
    print(f'error: {error}', file=sys.stderr)
    return 2
  except OSError as error:  # an artifact ML Metadata names is gone or unreadable
    print(f'error: cannot read {error.filename or error}: {error.strerror or error}; has the '
          'pipeline root moved or been cleaned since the run?', file=sys.stderr)
    return 2
  print(json.dumps(result, indent=2, default=str) if args.json else text(result))
  return 0


if __name__ == '__main__':
  sys.exit(main())
