"""A run's report: one self-contained HTML file (`python -m inspector report`).

Sections: the run and its components; the data (ExampleGen's counts and source, the
statistics of each split, the anomalies); training (the validation curve, the final
figures); the evaluation (top-K tables, per-user Recall@K and NDCG@K, slices) and the
gate's checks; lists of a few users (inspector/lists.py); the pushed model
(where it is, its signatures). Images are embedded, so the file opens in a browser from
disk, without a server; a section whose component did not run in this run says so.

The page is templates/report.html rendered by Jinja2 with autoescaping: every value from
the data (titles, paths, descriptions) reaches the page as text, never as markup.
"""
import base64
import json
import os
from typing import Dict, List, Optional, Sequence

import jinja2

from components.evaluator.tables import per_user_tables, slice_tables, top_k_tables
from inspector import lists
from inspector.queries import InspectionError, Inspector
from shared import names

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.join(os.path.dirname(__file__), 'templates')),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _number(value) -> str:
  """A table cell: floats to four places, counts with thousands separators."""
  if isinstance(value, float):
    return f'{value:.4f}'
  if isinstance(value, int) and not isinstance(value, bool):
    return f'{value:,}'
  return '' if value is None else str(value)


_TEMPLATES.filters['cell'] = _number
_TEMPLATES.globals['zip'] = zip  # the Lists section's two lists, row by row


def feature_statistics(uri: str, split: str) -> List[List[object]]:
  """One row per feature of a split: type, count, missing, and its distribution."""
  import tensorflow_data_validation as tfdv
  from tensorflow_metadata.proto.v0 import statistics_pb2
  stats = tfdv.load_stats_binary(os.path.join(uri, f'Split-{split}', 'FeatureStats.pb'))
  rows = []
  for dataset in stats.datasets:
    for feature in dataset.features:
      name = feature.path.step[0] if feature.path.step else feature.name
      kind = statistics_pb2.FeatureNameStatistics.Type.Name(feature.type).lower()
      if feature.HasField('num_stats'):
        s = feature.num_stats
        common = s.common_stats
        detail = f'mean {s.mean:.4g}, std {s.std_dev:.4g}, min {s.min:.4g}, max {s.max:.4g}'
      else:
        s = feature.string_stats
        common = s.common_stats
        top = s.top_values[0].value if s.top_values else ''
        detail = f'{s.unique:,} unique, most frequent {top!r}'
      rows.append([name, kind, common.num_non_missing, common.num_missing, detail])
  return rows


def image(path: str) -> str:
  """A PNG file as a data: URL, so that the page needs no other file."""
  with open(path, 'rb') as file:
    return 'data:image/png;base64,' + base64.b64encode(file.read()).decode()


def signatures(model_dir: str) -> List[List[object]]:
  """The SignatureDefs of a SavedModel's 'serve' graph: what a serving system calls."""
  from tensorflow.core.protobuf import saved_model_pb2
  import tensorflow as tf
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(model_dir, 'saved_model.pb'), 'rb') as file:
    saved_model.ParseFromString(file.read())

  def describe(tensors):
    return ', '.join(
        f'{key} {tf.dtypes.as_dtype(t.dtype).name}'
        f'[{",".join("?" if d.size < 0 else str(d.size) for d in t.tensor_shape.dim)}]'
        for key, t in sorted(tensors.items()))

  return [[name, describe(signature.inputs), describe(signature.outputs)]
          for graph in saved_model.meta_graphs if 'serve' in graph.meta_info_def.tags
          for name, signature in sorted(graph.signature_def.items())
          if not name.startswith('__')]


def context(inspector: Inspector, selector: Optional[str] = None, requested: Sequence[str] = (),
            count: int = lists.USERS, seed: int = 0) -> Dict:
  """Everything the template shows, read from ML Metadata and the artifacts it names; the
  users of the Lists section as lists.run_lists takes them (requested, count, seed)."""
  from components.validation_gate import split_anomalies
  number, run_context = inspector.select(selector)
  outputs = {f'{o.component}.{o.key}': o for o in inspector.outputs(run_context)}

  def output(component: str, key: str):
    return outputs.get(f'{component}.{key}')

  def splits(artifact) -> List[str]:
    return json.loads(artifact.properties.get('split_names', '[]')) if artifact else []

  examples = output(names.EXAMPLE_GEN, 'examples')
  statistics = output(names.STATISTICS_GEN, 'statistics')
  anomalies = output(names.EXAMPLE_VALIDATOR, 'anomalies')
  model_run = output(names.TRAINER, 'model_run')
  history = None
  if model_run:
    with open(os.path.join(model_run.uri, names.HISTORY_FILE)) as file:
      history = json.load(file)
  try:
    evaluation = inspector.evaluation(str(number))
  except InspectionError:
    evaluation = None
  try:
    user_lists, lists_missing = lists.run_lists(inspector, str(number), requested, count,
                                                seed), None
  except InspectionError as error:
    user_lists, lists_missing = None, str(error)
  pushed = output(names.PUSHER, 'pushed_model')
  destination = (pushed.properties[names.PUSHED_DESTINATION]
                 if pushed and pushed.properties.get(names.PUSHED) == 1 else None)
  run = inspector.run_summary(number, run_context)
  return {
      'pipeline_name': inspector.pipeline_name, 'number': number, 'run': run, 'names': names,
      'component_rows': [[c['component'], c['state'],
                          '' if c['seconds'] is None else f'{c["seconds"]:.1f}']
                         for c in run['components']],
      'examples': examples.properties if examples else None,
      'statistics': {split: feature_statistics(statistics.uri, split)
                     for split in splits(statistics)} if statistics else None,
      'anomalies': {split: split_anomalies(anomalies.uri, split)
                    for split in splits(anomalies)} if anomalies else None,
      'history': history,
      'training_rows': [[k, v, history['popularity_baseline_top_k'][k]]
                        for k, v in history['final_val_top_k'].items()] if history else [],
      'plot': image(os.path.join(model_run.uri, names.PLOT_FILE)) if model_run else None,
      'evaluation': evaluation,
      'top_k_tables': top_k_tables(evaluation) if evaluation else [],
      'per_user_tables': per_user_tables(evaluation) if evaluation else [],
      'slice_tables': slice_tables(evaluation) if evaluation else [],
      'lists': user_lists, 'lists_missing': lists_missing,
      'pushed': pushed.properties if pushed else None,
      'signatures': signatures(destination) if destination else [],
  }


def render(inspector: Inspector, selector: Optional[str] = None, requested: Sequence[str] = (),
           count: int = lists.USERS, seed: int = 0) -> str:
  return _TEMPLATES.get_template('report.html').render(
      context(inspector, selector, requested, count, seed))


def write(inspector: Inspector, selector: Optional[str], destination: str,
          requested: Sequence[str] = (), count: int = lists.USERS, seed: int = 0) -> str:
  """Writes the report.

  Args:
    inspector: the runs.
    selector: the run (Inspector.select's).
    destination: an .html/.htm file, or a directory for run-N.html.
    requested, count, seed: the users of the Lists section (lists.run_lists').

  Returns:
    The report's absolute path.
  """
  number, _ = inspector.select(selector)
  path = (destination if destination.lower().endswith(('.html', '.htm'))
          else os.path.join(destination, f'run-{number}.html'))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w', encoding='utf-8') as file:
    file.write(render(inspector, selector, requested, count, seed))
  return os.path.abspath(path)
