"""The inspector and the run report over the runs of conftest.gated_runs (four runs of one
pipeline: blessed, not blessed, a better model, a failed regression check) and a fifth
that fails half-way on data with an anomaly."""
import html
import json
import os
import re
import shutil
import subprocess

import pytest

from components.evaluator.tables import per_user_tables, top_k_tables
from shared import names
from tests import synthetic
from tests.pipeline_run import inspect_at, inspect_json_at, run_pipeline


@pytest.fixture(scope='module')
def store(gated_runs, tmp_path_factory):
  """The gated runs' output directory, after a fifth run that stopped at ValidationGate: an
  eval-only user with an unseen occupation (HTML, as is the most-rated title)."""
  data_dir = synthetic.write_grouplens_100k(
      synthetic.add_hostile_text(synthetic.make_clustered_release()),
      str(tmp_path_factory.mktemp('anomaly') / 'ml-100k'))
  failed = run_pipeline(data_dir, gated_runs.first.config.local.output_dir, '--epochs', '2')
  assert failed.exit_code == 1
  return gated_runs, failed


def inspect_cli(store, *args):
  """(exit code, stdout, stderr) of `python -m inspector` on the store."""
  return inspect_at(store[0].first.config.local.output_dir, *args)


def inspect_json(store, *args):
  return inspect_json_at(store[0].first.config.local.output_dir, *args)


def test_runs_lists_each_run_with_its_state_and_what_was_cached(store):
  runs = inspect_json(store, 'runs')
  assert [r['run'] for r in runs] == [1, 2, 3, 4, 5]
  assert [r['state'] for r in runs] == ['complete'] * 4 + ['failed']
  states = [{c['component']: c['state'] for c in r['components']} for r in runs]
  assert states[0]['CatalogTrainer'] == 'ran' and states[1]['CatalogTrainer'] == 'cached'
  assert states[1]['RetrievalEvaluator'] == 'ran'  # a new threshold: evaluated again
  assert states[4]['ValidationGate'] == 'failed'
  assert {states[4][c] for c in ('Transform', 'CatalogTrainer', 'ServingPusher')} == {'not run'}
  assert runs[4]['components_done'] == 5 and len(runs[4]['components']) == 10
  code, text, _ = inspect_cli(store, 'runs')
  assert code == 0 and 'failed: ValidationGate; not run: Transform' in text
  assert 'failed (partial)' in text and [r['partial'] for r in runs] == [False] * 4 + [True]


def test_artifacts_are_what_ml_metadata_and_the_disk_hold(store):
  gated, _ = store
  result = inspect_json(store, 'artifacts', '--run', '1')
  listed = {f'{a["component"]}.{a["key"]}': a for a in result['artifacts']}
  expected = gated.first.outputs()
  assert set(listed) == set(expected)
  for name, artifact in listed.items():
    assert artifact['uri'] == expected[name].uri and os.path.isdir(artifact['uri'])
  assert listed['MovieLensExampleGen.examples']['properties']['num_examples_train'] + (
      listed['MovieLensExampleGen.examples']['properties']['num_examples_eval']) == 3000
  second = {f'{a["component"]}.{a["key"]}': a
            for a in inspect_json(store, 'artifacts', '--run', '2')['artifacts']}
  assert second['CatalogTrainer.model']['produced'] == 'reused from an earlier run'
  assert second['CatalogTrainer.model']['uri'] == listed['CatalogTrainer.model']['uri']


def test_metrics_show_the_evaluation_and_the_gate_of_a_run(store):
  gated, _ = store
  result = inspect_json(store, 'metrics', '--run', '3')
  uri = gated.better.outputs()['RetrievalEvaluator.evaluation'].uri
  with open(os.path.join(uri, names.EVALUATION_FILE)) as file:
    on_disk = json.load(file)
  for key in ('top_k', 'top_k_unseen', 'per_user_unseen', 'slices', 'gate'):
    assert result[key] == on_disk[key]
  assert result['pushed']['version'] in gated.versions_after[2]
  code, text, _ = inspect_cli(store, 'metrics', '--run', '2')
  assert code == 0 and 'gate: NOT BLESSED' in text and 'FAIL  top-100 accuracy' in text
  assert 'pushed: nothing' in text and 'top-100 by user_occupation_text' in text
  assert 'Recall@10' in text and 'NDCG@10' in text


def test_compare_puts_settings_and_metrics_side_by_side(store):
  gated, _ = store
  result = inspect_json(store, 'compare', '1', '3')
  assert result['settings_that_differ']['CatalogTrainer.custom_config.training.epochs'] == [2, 6]
  first, better = result['metrics']
  assert first['top_k']['model']['100'] < better['top_k']['model']['100']
  assert first['blessed'] and better['blessed']
  code, text, _ = inspect_cli(store, 'compare', '2', '3')
  assert code == 0 and 'RetrievalEvaluator.min_top100' in text and '1.0100' in text
  assert 'model Recall@10 per user, seen removed' in text
  # By default the latest two: run 5 failed before it was evaluated, and says so.
  code, text, _ = inspect_cli(store, 'compare')
  assert code == 0 and 'Run 4' in text and 'run 5 has no evaluation' in text


def test_lineage_goes_from_the_pushed_model_back_to_the_data(store):
  gated, _ = store
  result = inspect_json(store, 'lineage', '--run', '3')
  steps = {step['component']: step for step in result['steps']}
  assert list(steps)[0] == 'ServingPusher'
  assert {'CatalogTrainer', 'Transform', 'SchemaGen', 'StatisticsGen', 'MovieLensExampleGen',
          'RetrievalEvaluator'} <= set(steps)
  model = steps['ServingPusher']['inputs']
  assert any(i['uri'] == gated.better.outputs()['CatalogTrainer.model'].uri for i in model)
  # The Evaluator's baseline, the first run's model, is traced to the run that trained it.
  baseline = next(i for i in steps['RetrievalEvaluator']['inputs'] if i['key'] == 'baseline_model')
  assert baseline['uri'] == gated.first.outputs()['CatalogTrainer.model'].uri
  assert sorted(s['run'] for s in result['steps'] if s['component'] == 'CatalogTrainer') == [1, 3]
  assert steps['MovieLensExampleGen']['data']['directory'] == gated.first.config.data.data_dir
  assert steps['MovieLensExampleGen']['data']['data_layout'] == 'grouplens-100k'
  # Run 2 reused run 1's model: its lineage says where it was made.
  cached = {s['component']: s for s in inspect_json(store, 'lineage', '--run', '2')['steps']}
  assert cached['CatalogTrainer']['run'] == 1


@pytest.mark.parametrize('args, message', [
    (('metrics', '--run', '99'), "no run '99': this pipeline has runs 1 to 5"),
    (('artifacts', '--run', 'not-a-run'), "no run 'not-a-run'"),
    (('metrics', '--run', '5'), 'run 5 has no evaluation: RetrievalEvaluator did not run '
                                '(run state: failed, 5 of 10 components done)'),
])
def test_wrong_questions_get_clear_answers(store, args, message):
  code, out, err = inspect_cli(store, *args)
  assert code == 2 and out == '' and message in err


def test_a_directory_without_metadata_says_so(tmp_path):
  code, _, err = inspect_at(str(tmp_path), 'runs')
  assert code == 2 and 'no ML Metadata at' in err and 'make run' in err


def test_a_run_is_selected_by_its_id_too(store):
  run_id = inspect_json(store, 'runs')[2]['run_id']
  assert inspect_json(store, 'metrics', '--run', run_id)['run'] == 3


CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')


def render_in_chromium(path, tmp_path):
  """The report's DOM after Chromium loaded it from disk, headless, no server."""
  if not CHROMIUM:
    if os.environ.get('REQUIRE_CHROMIUM'):
      pytest.fail('Chromium is required here (REQUIRE_CHROMIUM): apt-get install chromium')
    pytest.skip('no Chromium on this machine (apt-get install chromium)')
  try:
    result = subprocess.run(
        [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
         '--no-first-run', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', f'--user-data-dir={tmp_path / "chromium"}',
         '--virtual-time-budget=10000', '--dump-dom', f'file://{path}'],
        capture_output=True, text=True, timeout=120)
  except subprocess.TimeoutExpired:
    pytest.fail(f'Chromium did not finish loading {path}: a script on the page (an alert) '
                'may have blocked it')
  assert result.returncode == 0, result.stderr[-2000:]
  return result.stdout


def test_the_report_renders_in_a_browser_with_every_section_and_its_image(store, tmp_path):
  gated, _ = store
  code, out, _ = inspect_cli(store, 'report', '--run', '3', '--out',
                             str(tmp_path / 'run-3.html'))
  assert code == 0 and 'Report written' in out
  dom = render_in_chromium(tmp_path / 'run-3.html', tmp_path)
  for section in ('run', 'data', 'training', 'evaluation', 'per-user', 'slices', 'gate',
                  'pushed-model'):
    assert f'<section id="{section}">' in dom
  assert 'data-images="1 images, 0 broken"' in dom
  assert 'Statistics: train' in dom and 'Anomalies: eval' in dom
  assert 'Blessed' in dom and 'retrieve_excluding' in dom
  [version] = set(gated.versions_after[2]) - set(gated.versions_after[0])
  assert version in dom
  # The figures it shows are evaluation.json's, row by row.
  evaluation = inspect_json(store, 'metrics', '--run', '3')
  for section, tables, count in (('evaluation', top_k_tables, 8),
                                 ('per-user', per_user_tables, 4)):
    shown = re.search(rf'<section id="{section}">(.*?)</section>', dom, re.S).group(1)
    rows = [re.findall(r'<td>(.*?)</td>', row) for row in re.findall(r'<tr>(.*?)</tr>', shown,
                                                                       re.S)]
    expected = [[html.escape(f'{c:.4f}' if isinstance(c, float) else str(c)) for c in row]
                for _, _, table in tables(evaluation) for row in table]
    assert [row for row in rows if row] == expected
    assert len(expected) == count and expected[0][0] == 'this model'


def test_the_report_of_a_failed_run_shows_what_is_missing(store, tmp_path):
  code, _, _ = inspect_cli(store, 'report', '--out', str(tmp_path / 'failed.html'))
  assert code == 0
  dom = render_in_chromium(tmp_path / 'failed.html', tmp_path)
  assert 'run 5' in dom and 'failed' in dom
  assert 'Not in this run: CatalogTrainer did not produce it' in dom
  assert 'Not in this run: RetrievalEvaluator' in dom
  assert 'Unexpected string values' in dom  # the anomaly that stopped it
  assert 'data-images="0 images, 0 broken"' in dom


def test_html_in_titles_and_user_fields_shows_as_text_and_never_runs(store, tmp_path):
  """The fifth run's most-rated title is a script tag and its eval-only user's occupation
  an attribute breakout with an image whose onerror marks the page."""
  code, _, _ = inspect_cli(store, 'report', '--out', str(tmp_path / 'hostile.html'))
  assert code == 0
  dom = render_in_chromium(tmp_path / 'hostile.html', tmp_path)
  assert 'data-pwned' not in dom and 'data-images="0 images, 0 broken"' in dom
  assert '<script>alert(1)</script>' not in dom and '<img src="x"' not in dom
  assert html.escape(synthetic.SCRIPT_TITLE, quote=False) in dom  # shown, as text
  # (TFDV's anomaly description quotes the value with backslashes before its quotes)
  assert html.escape(synthetic.IMG_OCCUPATION.replace('"', '\\"'), quote=False) in dom
