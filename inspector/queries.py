"""What every run produced, read from ML Metadata: the questions `python -m inspector` answers.

`Inspector` holds the runs of one pipeline in one store and answers with plain dicts (the
`--json` output); inspector/tables.py turns them into text and inspector/report.py into HTML.
"""
import datetime
import json
import os
from typing import Dict, List, Optional, Tuple

from pipeline import metadata
from shared import names

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
                            '(see `python -m inspector runs`)')
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
    output = self.output(context, names.EVALUATOR, 'evaluation')
    if output is None:
      summary = self.run_summary(number, context)
      raise InspectionError(
          f'run {number} has no evaluation: {names.EVALUATOR} did not run '
          f'(run state: {summary["state"]}, {summary["components_done"]} of '
          f'{len(summary["components"])} components done)')
    with open(os.path.join(output.uri, names.EVALUATION_FILE)) as file:
      report = json.load(file)
    pushed = self.output(context, names.PUSHER, 'pushed_model')
    report['pushed'] = ({'version': pushed.properties.get(names.PUSHED_VERSION),
                         'destination': pushed.properties.get(names.PUSHED_DESTINATION)}
                        if pushed and pushed.properties.get(names.PUSHED) == 1 else None)
    return {'run': number, 'run_id': context.name, 'evaluation_uri': output.uri, **report}

  # tuning ----------------------------------------------------------------------------
  def tuning(self, selector: Optional[str] = None) -> Dict:
    """The Tuner's trials of a run (with --tune) and the settings the Trainer took."""
    number, context = self.select(selector)
    results = self.output(context, names.TUNER, 'tuner_results')
    if results is None:
      raise InspectionError(f'run {number} has no Tuner: it ran without --tune, or stopped '
                            'before the Tuner')
    with open(os.path.join(results.uri, names.TRIALS_FILE)) as file:
      trials = json.load(file)
    best = self.output(context, names.TUNER, 'best_hyperparameters')
    with open(os.path.join(best.uri, 'best_hyperparameters.txt')) as file:
      chosen = json.load(file)
    return {'run': number, 'run_id': context.name, 'tuner_results_uri': results.uri,
            'produced': 'reused from an earlier run' if results.state == 'CACHED' else 'this run',
            'best_hyperparameters': chosen['values'],
            'trials': trials}

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
                        'per_user_unseen': evaluation.get('per_user_unseen'),
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
      pushed = self.output(context, names.PUSHER, 'pushed_model')
      start = (pushed if pushed and pushed.properties.get(names.PUSHED) == 1
               else self.output(context, names.TRAINER, 'model'))
      if start is None:
        raise InspectionError(f'run {number} produced no model to trace: pass --artifact ID '
                              '(ids are in `python -m inspector artifacts`)')
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
                           for k in (names.DATA_SOURCE, names.DATA_LAYOUT) if outputs}}
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
