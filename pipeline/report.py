"""A run's report: one self-contained HTML file (`python -m pipeline.inspect report`).

Sections: the run and its components; the data (ExampleGen's counts and source, the
statistics of each split, the anomalies); training (the validation curve, the final
figures); the evaluation (top-K tables, slices) and the gate's checks; the pushed model
(where it is, its signatures). Images are embedded, so the file opens in a browser from
disk, without a server; a section whose component did not run in this run says so.
"""
import base64
import html
import json
import os
from typing import List, Optional

from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; } .pass { color: #176b2c; } .fail { color: #b00020; }
.missing, .broken { color: #8a5a00; font-style: italic; } code { font-size: .95em; }
img { max-width: 100%; border: 1px solid #eee; }
"""
# Marks each image that did not load, for the reader and for the test that renders this.
SCRIPT = """
window.addEventListener('load', function () {
  var broken = Array.prototype.filter.call(document.images, function (image) {
    return !(image.complete && image.naturalWidth > 0);
  });
  document.body.setAttribute('data-images',
      document.images.length + ' images, ' + broken.length + ' broken');
  broken.forEach(function (image) {
    var note = document.createElement('p');
    note.className = 'broken';
    note.textContent = 'This image did not load: ' + image.alt;
    image.parentNode.insertBefore(note, image.nextSibling);
  });
});
"""


def _e(value) -> str:
  if isinstance(value, float):
    return f'{value:.4f}'
  return html.escape('' if value is None else str(value))


def table(header: List[str], rows: List[List[object]]) -> str:
  head = ''.join(f'<th>{_e(h)}</th>' for h in header)
  body = ''.join('<tr>' + ''.join(f'<td>{_e(c)}</td>' for c in row) + '</tr>' for row in rows)
  return f'<table><tr>{head}</tr>{body}</table>'


def section(anchor: str, title: str, body: str) -> str:
  return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def missing(component: str, state: str) -> str:
  return (f'<p class="missing">Not in this run: {_e(component)} did not produce it '
          f'(the run is {_e(state)}).</p>')


def feature_statistics(uri: str, split: str) -> List[List[object]]:
  """One row per feature of a split: type, count, missing, and its distribution."""
  stats = statistics_pb2.DatasetFeatureStatisticsList()
  with open(os.path.join(uri, f'Split-{split}', 'FeatureStats.pb'), 'rb') as file:
    stats.ParseFromString(file.read())
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
      rows.append([name, kind, f'{common.num_non_missing:,}', f'{common.num_missing:,}',
                   detail])
  return rows


def anomalies(uri: str, split: str) -> List[List[object]]:
  path = os.path.join(uri, f'Split-{split}', 'SchemaDiff.pb')
  found = anomalies_pb2.Anomalies()
  with open(path, 'rb') as file:
    found.ParseFromString(file.read())
  return [[feature, info.short_description, info.description]
          for feature, info in sorted(found.anomaly_info.items())]


def image(path: str, alt: str) -> str:
  with open(path, 'rb') as file:
    data = base64.b64encode(file.read()).decode()
  return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def signatures(model_dir: str) -> List[List[object]]:
  """The SignatureDefs of a SavedModel's 'serve' graph: what a serving system calls."""
  from tensorflow.core.protobuf import saved_model_pb2
  import tensorflow as tf
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(model_dir, 'saved_model.pb'), 'rb') as file:
    saved_model.ParseFromString(file.read())
  rows = []
  for graph in saved_model.meta_graphs:
    if 'serve' not in graph.meta_info_def.tags:
      continue
    for name, signature in sorted(graph.signature_def.items()):
      if name.startswith('__'):
        continue

      def describe(tensors):
        return ', '.join(
            f'{key} {tf.dtypes.as_dtype(t.dtype).name}'
            f'[{",".join("?" if d.size < 0 else str(d.size) for d in t.tensor_shape.dim)}]'
            for key, t in sorted(tensors.items()))
      rows.append([name, describe(signature.inputs), describe(signature.outputs)])
  return rows


def render(inspector, selector: Optional[str] = None) -> str:
  from pipeline import inspect
  number, context = inspector.select(selector)
  run = inspector.run_summary(number, context)
  outputs = {f'{o.component}.{o.key}': o for o in inspector.outputs(context)}
  state = run['state']
  parts = [f'<h1>{_e(inspector.pipeline_name)}: run {number}</h1>',
           f'<p>Run id <code>{_e(run["run_id"])}</code>, started {_e(run["started"])}, '
           f'{run["seconds"]:.0f} s, <b>{_e(state)}{" (partial)" if run["partial"] else ""}'
           f'</b> ({run["components_done"]} of {len(run["components"])} components done).</p>']
  parts.append(section('run', 'Components', table(
      ['component', 'in this run', 'seconds'],
      [[c['component'], c['state'], '' if c['seconds'] is None else f'{c["seconds"]:.1f}']
       for c in run['components']])))

  examples = outputs.get('MovieLensExampleGen.examples')
  if examples:
    p = examples.properties
    body = (f'<p>Source: {_e(p.get("data_source"))} (layout {_e(p.get("data_layout"))}). '
            f'Ratings: train {p.get("num_examples_train", 0):,}, eval '
            f'{p.get("num_examples_eval", 0):,}; users {p.get("num_users", 0):,}; bad rows '
            f'skipped {p.get("num_bad_rows_skipped", 0):,}.</p>')
  else:
    body = missing('MovieLensExampleGen', state)
  statistics = outputs.get('StatisticsGen.statistics')
  if statistics:
    for split in json.loads(statistics.properties.get('split_names', '[]')):
      body += f'<h3>Statistics: {_e(split)}</h3>' + table(
          ['feature', 'type', 'present', 'missing', 'distribution'],
          feature_statistics(statistics.uri, split))
  else:
    body += missing('StatisticsGen', state)
  found = outputs.get('ExampleValidator.anomalies')
  if found:
    for split in json.loads(found.properties.get('split_names', '[]')):
      rows = anomalies(found.uri, split)
      body += f'<h3>Anomalies: {_e(split)}</h3>' + (
          table(['feature', 'anomaly', 'description'], rows) if rows
          else '<p class="pass">None: the split matches the schema.</p>')
  else:
    body += missing('ExampleValidator', state)
  parts.append(section('data', 'Data', body))

  model_run = outputs.get('CatalogTrainer.model_run')
  if model_run:
    with open(os.path.join(model_run.uri, 'history.json')) as file:
      history = json.load(file)
    config = history['config']
    body = (f'<p>Layers {_e(config["layer_sizes"])}, {_e(config["optimizer"])} '
            f'{_e(config["learning_rate"])}, {_e(config["epochs"])} epochs of batch '
            f'{_e(config["batch_size"])}; {history["num_train"]:,} training ratings, '
            f'{history["num_candidates"]:,} candidate titles.</p>'
            + image(os.path.join(model_run.uri, 'validation_top100.png'),
                    'validation top-100 accuracy by epoch')
            + table(['K', 'validation top-K (last epoch)', 'most popular'],
                    [[k, v, history['popularity_baseline_top_k'][k]]
                     for k, v in history['final_val_top_k'].items()]))
  else:
    body = missing('CatalogTrainer', state)
  parts.append(section('training', 'Training', body))

  try:
    evaluation = inspector.evaluation(str(number))
  except inspect.InspectionError:
    evaluation = None
  if evaluation:
    body = (f'<p>{evaluation["num_eval_ratings"]:,} held-out ratings, '
            f'{evaluation["num_candidates"]:,} candidate titles.</p>')
    body += ''.join(f'<h3>{_e(title)}</h3>' + table(header, rows)
                    for title, header, rows in inspect.top_k_tables(evaluation))
    slices = ''.join(f'<h3>{_e(title)}</h3>' + table(header, rows)
                     for title, header, rows in inspect.slice_tables(evaluation))
    gate = evaluation['gate']
    checks = ''.join(
        f'<li class="{"pass" if c["passed"] else "fail"}">'
        f'{"PASS" if c["passed"] else "FAIL"}: {_e(c["explanation"])}</li>'
        for c in gate['checks'])
    parts.append(section('evaluation', 'Evaluation', body))
    parts.append(section('slices', 'Slices', slices))
    parts.append(section('gate', 'Gate', f'<p><b>{"Blessed" if gate["blessed"] else "Not blessed"}'
                         f'</b></p><ul>{checks}</ul>'))
  else:
    for anchor, title in (('evaluation', 'Evaluation'), ('slices', 'Slices'), ('gate', 'Gate')):
      parts.append(section(anchor, title, missing('RetrievalEvaluator', state)))

  pushed = outputs.get('ServingPusher.pushed_model')
  if pushed and pushed.properties.get('pushed') == 1:
    destination = pushed.properties['pushed_destination']
    body = (f'<p>Version <b>{_e(pushed.properties["pushed_version"])}</b> at '
            f'<code>{_e(destination)}</code>.</p>'
            + table(['signature', 'inputs', 'outputs'], signatures(destination)))
  elif pushed:
    body = '<p class="fail">Nothing pushed: the Evaluator did not bless this model.</p>'
  else:
    body = missing('ServingPusher', state)
  parts.append(section('pushed-model', 'Pushed model', body))

  return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
          f'<title>{_e(inspector.pipeline_name)} run {number}</title>'
          f'<style>{STYLE}</style><script>{SCRIPT}</script></head><body>'
          + ''.join(parts) + '</body></html>')


def write(inspector, selector: Optional[str], destination: str) -> str:
  """Writes the report; `destination` is an .html/.htm file, or a directory for run-N.html."""
  number, _ = inspector.select(selector)
  path = (destination if destination.lower().endswith(('.html', '.htm'))
          else os.path.join(destination, f'run-{number}.html'))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w', encoding='utf-8') as file:
    file.write(render(inspector, selector))
  return os.path.abspath(path)

