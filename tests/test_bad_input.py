"""Bad input through the real pipeline: a clear error naming file, line and problem, or a
counted, recorded skip where the user allowed it. Nothing is dropped silently."""
import json
import os

import pytest

from tests import synthetic
from tests.pipeline_run import run_pipeline


@pytest.fixture
def release():
  return synthetic.make_release(num_users=8, num_movies=10, num_ratings=60, seed=1)


def test_a_malformed_row_fails_the_run_naming_file_line_and_reason(release, tmp_path):
  data_dir = synthetic.write_grouplens_100k(release, str(tmp_path / 'data'))
  synthetic.append_line(os.path.join(data_dir, 'u.data'), '3\t7\t4')  # line 61
  synthetic.append_line(os.path.join(data_dir, 'u.data'), '3\tx\t4\t881250949')  # line 62
  run = run_pipeline(data_dir, str(tmp_path / 'out'))
  assert run.exit_code == 1
  u_data = os.path.join(data_dir, 'u.data')
  assert '2 rows of' in run.stderr and 'raise --max-bad-rows to skip them' in run.stderr
  assert (f'{u_data}, line 61: expected 4 tab-separated fields (user id, movie id, rating, '
          'timestamp), found 3') in run.stderr
  assert f"{u_data}, line 62: movie id 'x' is not a number" in run.stderr
  assert 'ValidationGate' not in run.stdout  # nothing after ExampleGen ran
  # The full list survives the failed run (TFX removes the failed execution's outputs).
  listing = run.stderr.split('(all of them are listed in ')[1].split(')')[0]
  with open(listing) as file:
    assert sorted(json.loads(line)['line'] for line in file) == [61, 62]


def test_a_bad_movies_line_comes_first_and_its_orphaned_ratings_are_counted(release, tmp_path):
  data_dir = synthetic.write_grouplens_100k(release, str(tmp_path / 'data'))
  u_item = os.path.join(data_dir, 'u.item')
  with open(u_item, encoding='latin-1') as file:
    lines = file.read().splitlines()
  lines[2] = lines[2].rsplit('|', 1)[0]  # movie 3: one genre flag short
  with open(u_item, 'w', encoding='latin-1') as file:
    file.write('\n'.join(lines) + '\n')
  orphans = sum(r.movie_id == 3 for r in release.ratings)
  run = run_pipeline(data_dir, str(tmp_path / 'out'))
  assert run.exit_code == 1
  listed = run.stderr.split('skip them):\n')[1].splitlines()
  assert listed[0].startswith(f'  {u_item}, line 3: expected 24')  # the cause, first
  assert listed[1].startswith(f'  {orphans} ratings name a movie that u.item does not define '
                              f'(first: {os.path.join(data_dir, "u.data")}, line ')
  assert f'{orphans + 1} rows of' in run.stderr


def test_allowed_bad_rows_are_skipped_counted_and_recorded(release, tmp_path):
  data_dir = synthetic.write_grouplens_100k(release, str(tmp_path / 'data'))
  synthetic.append_line(os.path.join(data_dir, 'u.data'), '3\t999\t4\t881250949')
  synthetic.append_line(os.path.join(data_dir, 'u.user'), '3|30|M|writer|12345')
  # ExampleGen is what skips them: the run stops after it (--until), as the rest is the same.
  run = run_pipeline(data_dir, str(tmp_path / 'out'), '--max-bad-rows', '5',
                     '--until', 'MovieLensExampleGen')
  assert run.exit_code == 0, run.stderr
  assert 'WARNING: Skipped 2 bad rows (allowed: 5)' in run.stdout
  assert 'movie id 999 is not in u.item' in run.stdout
  assert 'user id 3 is already on line 3' in run.stdout
  examples = run.outputs()['MovieLensExampleGen.examples']
  assert examples.properties['num_bad_rows_skipped'] == 2
  assert (examples.properties['num_examples_train'] + examples.properties['num_examples_eval']
          == 60)
  with open(os.path.join(examples.uri, 'bad_rows.jsonl')) as file:
    bad = sorted((row['file'], row['line']) for row in map(json.loads, file))
  assert bad == [(os.path.join(data_dir, 'u.data'), 61), (os.path.join(data_dir, 'u.user'), 9)]


def test_a_missing_file_is_named(release, tmp_path):
  data_dir = synthetic.write_grouplens_100k(release, str(tmp_path / 'data'))
  os.remove(os.path.join(data_dir, 'u.user'))
  run = run_pipeline(data_dir, str(tmp_path / 'out'))
  assert run.exit_code == 1
  assert 'looks like GroupLens MovieLens 100k (u.data, u.item, u.user) but lacks u.user' in (
      run.stderr)


def test_an_empty_file_is_named(release, tmp_path):
  data_dir = synthetic.write_grouplens_100k(release, str(tmp_path / 'data'))
  open(os.path.join(data_dir, 'u.item'), 'w').close()
  run = run_pipeline(data_dir, str(tmp_path / 'out'))
  assert run.exit_code == 1
  assert (f'{os.path.join(data_dir, "u.item")} is empty; this directory was given with '
          '--data-dir: restore the file from where it came from') in run.stderr


def test_a_missing_data_directory_says_how_to_fetch(tmp_path):
  run = run_pipeline(str(tmp_path / 'nowhere'), str(tmp_path / 'out'))
  assert run.exit_code == 1
  assert 'does not exist. Fetch a release with `python -m data.fetch --release 100k`' in run.stderr


def test_a_file_in_the_wrong_layout_is_recognised(release, tmp_path):
  data_dir = synthetic.write_recbole_100k(release, str(tmp_path / 'data'))
  # GroupLens' u.data content under RecBole's name: no header, so line 1 is flagged.
  inter = os.path.join(data_dir, 'ml-100k.inter')
  with open(inter) as file:
    lines = file.read().splitlines()[1:]
  with open(inter, 'w') as file:
    file.write('\n'.join(lines) + '\n')
  run = run_pipeline(data_dir, str(tmp_path / 'out'))
  assert run.exit_code == 1
  assert f'{inter}, line 1: the header should be' in run.stderr
  assert 'is this file in another layout?' in run.stderr


def test_anomalies_stop_the_pipeline_before_training(tmp_path):
  # An occupation seen only in eval is outside the schema SchemaGen infers from train.
  release = synthetic.add_eval_only_user(
      synthetic.make_release(num_users=20, num_movies=30, num_ratings=300, seed=2))
  data_dir = synthetic.write_grouplens_100k(release, str(tmp_path / 'data'))
  run = run_pipeline(data_dir, str(tmp_path / 'out'))
  assert run.exit_code == 1
  assert 'ExampleValidator found 1 anomalies in the examples; training stops here' in run.stderr
  assert 'eval split, feature user_occupation_text: Unexpected string values' in run.stderr
  assert 'astronaut' in run.stderr
