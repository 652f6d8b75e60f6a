"""The Evaluator's gate and the Pusher, over runs of the real pipeline (conftest.gated_runs):
only a blessed model ships, and a served version is never touched again."""
import json
import os

import pytest

from shared import names

SLICES = ('user_gender', 'bucketized_user_age', 'user_occupation_text',
          'user_training_ratings')


def evaluation(run):
  with open(os.path.join(run.outputs()['RetrievalEvaluator.evaluation'].uri,
                         names.EVALUATION_FILE)) as file:
    return json.load(file)


def failed_checks(report):
  return [check['name'] for check in report['gate']['checks'] if not check['passed']]


def new_versions(gated_runs, run_index):
  before = gated_runs.versions_after[run_index - 1] if run_index else {}
  return sorted(set(gated_runs.versions_after[run_index]) - set(before))


def test_a_good_first_model_is_blessed_and_pushed_as_a_numbered_version(gated_runs):
  run = gated_runs.first
  report = evaluation(run)
  assert report['gate']['blessed'] and failed_checks(report) == []
  assert report['baseline_model'] is None
  assert 'PASS  no blessed model yet' in run.stdout and 'Blessed: the Pusher ships' in run.stdout
  [version] = new_versions(gated_runs, 0)
  assert version.isdigit()  # TF Serving loads <serving_dir>/<integer version>/
  version_dir = os.path.join(run.config.serving.serving_dir, version)
  assert {'saved_model.pb', 'variables', 'assets.extra'} <= set(os.listdir(version_dir))
  assert f'served as version {version}: {version_dir}' in run.stdout
  outputs = run.outputs()
  blessing = outputs['RetrievalEvaluator.blessing']
  assert blessing.properties[names.BLESSED] == 1
  assert blessing.properties['current_model'] == outputs['CatalogTrainer.model'].uri
  assert isinstance(blessing.properties['current_model_id'], int)
  assert os.path.exists(os.path.join(blessing.uri, 'BLESSED'))
  assert outputs['ServingPusher.pushed_model'].properties[names.PUSHED_VERSION] == version
  # The figures ML Metadata shows at a glance, under their stored names (SQLite keeps six
  # significant digits of a float property).
  quick_look = outputs['RetrievalEvaluator.evaluation'].properties
  for name in ('model', 'popularity'):
    assert quick_look[f'{name}_top_100'] == pytest.approx(report['top_k'][name][names.GATE_KEY],
                                                          rel=1e-5)
  assert quick_look[names.BLESSED] == 1


def test_the_evaluation_of_the_exported_model_reproduces_the_trainers_validation(gated_runs):
  run = gated_runs.first
  # The recommended preset: user features (which the Evaluator queries with, as the
  # validation did) and --softmax auto, the exact softmax on a 300-title catalog.
  assert 'candidate titles, exact softmax over the catalog: ' in run.stdout
  report = evaluation(run)
  with open(os.path.join(run.outputs()['CatalogTrainer.model_run'].uri,
                         names.HISTORY_FILE)) as file:
    history = json.load(file)
  one_rating = 1 / report['num_eval_ratings']
  for k, value in history['final_val_top_k'].items():
    assert report['top_k']['model'][k] == pytest.approx(value, abs=one_rating)
  assert report['top_k']['popularity'] == history['popularity_baseline_top_k']
  assert report['num_candidates'] == 300 and report['num_eval_ratings'] == history['num_eval']
  for section in ('top_k', 'top_k_unseen'):
    for name in ('model', 'popularity', 'unknown_user'):
      values = [report[section][name][k] for k in map(str, names.TOP_KS)]
      assert values == sorted(values) and 0 <= values[0] and values[-1] <= 1
  # Removing what a user has seen can only move the truth up the list.
  for name in ('model', 'popularity'):
    assert all(report['top_k_unseen'][name][k] >= report['top_k'][name][k]
               for k in report['top_k'][name])


def history_of(run):
  with open(os.path.join(run.outputs()['CatalogTrainer.model_run'].uri,
                         names.HISTORY_FILE)) as file:
    return json.load(file)


def test_a_streamed_input_trains_as_well_and_validation_can_be_a_sample(gated_runs):
  """The better run streamed its examples from the TFRecords (a 500-example shuffle buffer)
  and validated on 300 sampled eval ratings; the first held them in memory and validated on
  all. The Evaluator scores the whole eval split either way."""
  first, better = history_of(gated_runs.first), history_of(gated_runs.better)
  assert (first['input_mode'], better['input_mode']) == ('memory', 'stream')
  assert first['num_train'] == better['num_train'] == 2399  # every example, either way
  assert first['num_validation'] == first['num_eval'] == evaluation(gated_runs.first)[
      'num_eval_ratings']
  assert better['num_validation'] == 300 < better['num_eval']
  assert evaluation(gated_runs.better)['num_eval_ratings'] == better['num_eval']
  losses = [epoch['loss'] for epoch in better['history']]
  assert losses[-1] < losses[0] * 0.8  # it learned from the stream
  assert better['final_val_top_k']['10'] > 2 * better['popularity_baseline_top_k']['10']
  assert set(better['seconds']) == {'set_up', 'training', 'first_epoch', 'export'}


def test_top_100_is_sliced_by_user_features_and_activity(gated_runs):
  report = evaluation(gated_runs.first)
  assert set(report['slices']) == set(SLICES)
  for name in SLICES:
    rows = report['slices'][name]
    assert sum(row['count'] for row in rows) == report['num_eval_ratings']
    overall = sum(row['model'] * row['count'] for row in rows) / report['num_eval_ratings']
    assert overall == pytest.approx(report['top_k']['model'][names.GATE_KEY])
    assert all(set(row) == {'value', 'count', 'model', 'model_unseen', 'popularity',
                            'popularity_unseen'} for row in rows)
  assert {row['value'] for row in report['slices']['user_gender']} == {'M', 'F'}
  assert {row['value'] for row in report['slices']['user_training_ratings']} <= {
      '0', '1-19', '20-49'}


def test_a_model_failing_the_gate_pushes_nothing_and_the_served_version_stays(gated_runs):
  run = gated_runs.impossible
  report = evaluation(run)
  assert not report['gate']['blessed'] and failed_checks(report) == ['minimum']
  assert 'FAIL  top-100 accuracy' in run.stdout and '>= 1.0100 (absolute minimum' in run.stdout
  assert 'Nothing pushed' in run.stdout
  outputs = run.outputs()
  assert outputs['ServingPusher.pushed_model'].properties[names.PUSHED] == 0
  assert outputs['RetrievalEvaluator.blessing'].properties[names.BLESSED] == 0
  assert os.path.exists(os.path.join(outputs['RetrievalEvaluator.blessing'].uri, 'NOT_BLESSED'))
  assert gated_runs.versions_after[1] == gated_runs.versions_after[0]  # same files, same bytes


def test_a_better_model_is_compared_with_the_first_and_pushed_beside_it(gated_runs):
  first, better = evaluation(gated_runs.first), evaluation(gated_runs.better)
  assert better['baseline_model']['uri'] == first['model']['uri']
  # The baseline is evaluated again on the same split: the first model's figure.
  assert better['top_k']['baseline_model'] == first['top_k']['model']
  assert better['top_k']['model'][names.GATE_KEY] > first['top_k']['model'][names.GATE_KEY]
  regression = better['gate']['checks'][2]
  assert regression['passed'] and regression['threshold'] == pytest.approx(
      first['top_k']['model'][names.GATE_KEY] - 0.01)
  blessing = gated_runs.better.outputs()['RetrievalEvaluator.blessing'].properties
  assert blessing['baseline_model'] == first['model']['uri'] and blessing[names.BLESSED] == 1
  [version] = new_versions(gated_runs, 2)
  assert version > max(gated_runs.versions_after[0])
  # The earlier version is still there, untouched.
  assert {v: d for v, d in gated_runs.versions_after[2].items() if v != version} == (
      gated_runs.versions_after[0])


def test_a_worse_model_after_a_better_blessed_one_fails_the_regression_check(gated_runs):
  report, better = evaluation(gated_runs.worse), evaluation(gated_runs.better)
  assert 'no_regression' in failed_checks(report) and not report['gate']['blessed']
  assert report['baseline_model']['uri'] == better['model']['uri']
  regression = next(c for c in report['gate']['checks'] if c['name'] == 'no_regression')
  # Under the default tolerance: the served model's score on this split, less 0.01.
  assert regression['threshold'] == pytest.approx(
      report['top_k']['baseline_model'][names.GATE_KEY] - 0.01)
  assert report['top_k']['baseline_model'] == better['top_k']['model']
  assert regression['value'] == report['top_k']['model'][names.GATE_KEY] < regression['threshold']
  assert gated_runs.versions_after[3] == gated_runs.versions_after[2]  # nothing pushed


def test_pushes_are_staged_then_renamed_and_a_killed_pushs_leftover_is_cleared(gated_runs):
  from tests.conftest import KILLED_PUSH
  # Run 3 found a staging directory left by a push that never finished (conftest) and
  # removed it; every push renamed its staged version into place and left nothing else.
  assert f'{KILLED_PUSH}, left by a push that did not finish' in gated_runs.better.stdout
  assert all(name.isdigit() for name in gated_runs.versions_after[2])
  pushed = gated_runs.better.outputs()['ServingPusher.pushed_model'].properties
  serving_dir = os.path.dirname(pushed[names.PUSHED_DESTINATION])
  assert sorted(os.listdir(serving_dir)) == sorted(gated_runs.versions_after[3])
  assert os.path.basename(pushed[names.PUSHED_DESTINATION]) == pushed[names.PUSHED_VERSION]
  assert os.path.exists(os.path.join(pushed[names.PUSHED_DESTINATION], 'saved_model.pb'))


def test_a_model_blessed_again_is_not_pushed_again(gated_runs, tmp_path):
  """The Pusher's executor, given the better run's served model and a new blessing of it
  (as after an Evaluator rerun with other settings): it records the served version and
  writes nothing into the serving directory."""
  import shutil
  from tfx.types import standard_artifacts
  from components import pusher
  from tests.conftest import _digest
  run = gated_runs.better
  outputs = run.outputs()
  serving_dir = tmp_path / 'serving'
  shutil.copytree(os.path.dirname(outputs['ServingPusher.pushed_model'].properties[
      names.PUSHED_DESTINATION]), serving_dir)
  before = {version.name: _digest(version) for version in serving_dir.iterdir()}
  model = standard_artifacts.Model()
  model.uri = outputs['CatalogTrainer.model'].uri
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'blessing')
  blessing.set_int_custom_property(names.BLESSED, 1)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / 'pushed')
  from tfx.proto import pusher_pb2
  from tfx.utils import proto_utils
  destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(
      base_directory=str(serving_dir)))
  pusher.Executor().Do({'model': [model], 'model_blessing': [blessing]},
                       {'pushed_model': [pushed]},
                       {'push_destination': proto_utils.proto_to_json(destination)})
  assert pushed.get_int_custom_property(names.PUSHED) == 1
  served = outputs['ServingPusher.pushed_model'].properties[names.PUSHED_VERSION]
  assert pushed.get_string_custom_property(names.PUSHED_VERSION) == served
  assert {version.name: _digest(version) for version in serving_dir.iterdir()} == before
