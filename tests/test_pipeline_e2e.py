"""The real pipeline, from runner_local's entry point, on synthetic MovieLens files."""
import json
import os
import re

import pytest
from tensorflow_metadata.proto.v0 import schema_pb2
from google.protobuf import text_format

from components.example_gen import ingest
from data import features as f
from modules import hparams
from shared import names
from tests import synthetic
from tests.pipeline_run import feature_values, read_examples, run_pipeline, signature_names

COMPONENTS = ('MovieLensExampleGen', 'StatisticsGen', 'SchemaGen', 'ExampleValidator',
              'ValidationGate', 'Transform', 'CatalogTuner', 'CatalogTrainer',
              'RetrievalEvaluator', 'ServingPusher')
# The Tuner runs here with a budget of two trials: their epochs are its choice.
TRAINING_FLAGS = ('--epochs', '2', '--validation-freq', '5', '--batch-size', '128',
                  '--tune', '--tune-trials', '2')
TFDS_FEATURES = {f.USER_ID, f.MOVIE_ID, f.USER_RATING, f.TIMESTAMP, f.MOVIE_TITLE,
                 f.MOVIE_GENRES, f.RAW_USER_AGE, f.BUCKETIZED_USER_AGE, f.USER_GENDER,
                 f.USER_OCCUPATION_TEXT, f.USER_ZIP_CODE}


@pytest.fixture(scope='module')
def release():
  return synthetic.make_release(num_users=30, num_movies=40, num_ratings=600)


@pytest.fixture(scope='module')
def first_run(release, tmp_path_factory):
  root = tmp_path_factory.mktemp('pipeline')
  data_dir = synthetic.write_grouplens_100k(release, str(root / 'ml-100k'))
  return run_pipeline(data_dir, str(root / 'outputs'), *TRAINING_FLAGS)


def test_the_run_succeeds_and_prints_each_component(first_run):
  assert first_run.exit_code == 0, first_run.stderr
  for component in COMPONENTS:
    assert f'] {component} finished in' in first_run.stdout
  assert '600 ratings -> train' in first_run.stdout
  assert 'catalog of 40 movies; 30 users; 0 bad rows skipped' in first_run.stdout
  # The Trainer says which softmax it trains with (here the Tuner's choice).
  assert re.search(r'candidate titles, (exact softmax over the catalog|in-batch softmax): ',
                   first_run.stdout)
  assert ' eval ratings: model, popularity, unknown_user' in first_run.stdout
  assert '  model ranked in ' in first_run.stdout
  assert os.path.exists(first_run.config.local.metadata_path)


def test_ml_metadata_records_every_output(first_run):
  outputs = first_run.outputs()
  assert {'MovieLensExampleGen.examples', 'MovieLensExampleGen.catalog',
          'StatisticsGen.statistics', 'SchemaGen.schema', 'ExampleValidator.anomalies',
          'Transform.transform_graph', 'Transform.transformed_examples',
          'CatalogTrainer.model', 'CatalogTrainer.model_run'} <= set(outputs)
  examples = outputs['MovieLensExampleGen.examples'].properties
  assert json.loads(examples['split_names']) == ['train', 'eval']
  assert examples['num_examples_train'] + examples['num_examples_eval'] == 600
  assert examples['num_bad_rows_skipped'] == 0
  assert examples['data_layout'] == 'grouplens-100k'
  assert outputs['MovieLensExampleGen.catalog'].properties['num_movies'] == 40
  for output in outputs.values():
    assert output.state == 'COMPLETE' and os.path.isdir(output.uri)


def test_examples_hold_every_rating_with_tfds_features(first_run, release):
  uri = first_run.outputs()['MovieLensExampleGen.examples'].uri
  by_split = {split: [feature_values(e) for e in read_examples(uri, split)]
              for split in ('train', 'eval')}
  examples = by_split['train'] + by_split['eval']
  assert len(examples) == 600
  assert {frozenset(e) for e in examples} == {frozenset(TFDS_FEATURES)}
  assert sorted((e[f.USER_ID], e[f.MOVIE_ID]) for e in examples) == sorted(
      (str(r.user_id), str(r.movie_id)) for r in release.ratings)
  # A rating of the first movie carries its latin-1 title, genres and its user's features.
  rating = next(r for r in release.ratings if r.movie_id == 1)
  example = next(e for e in examples
                 if (e[f.USER_ID], e[f.MOVIE_ID]) == (str(rating.user_id), '1'))
  user = release.users[rating.user_id - 1]
  assert example[f.MOVIE_TITLE] == release.movies[0].title == 'Misérables, Les (1991)'
  assert example[f.MOVIE_GENRES] == sorted(f.genre_id(g) for g in release.movies[0].genres)
  assert example[f.TIMESTAMP] == rating.timestamp
  assert example[f.USER_RATING] == rating.rating
  assert example[f.RAW_USER_AGE] == user.age
  assert example[f.USER_GENDER] == int(user.gender == 'M')
  assert example[f.USER_OCCUPATION_TEXT] == user.occupation
  # The split is the stable hash: about 80/20, and each rating where its hash puts it.
  assert 0.7 < len(by_split['train']) / 600 < 0.9
  for split, bucket_ok in (('train', lambda b: b < 80), ('eval', lambda b: b >= 80)):
    assert all(bucket_ok(ingest.split_bucket(e, 100)) for e in by_split[split])


def test_the_catalog_holds_every_movie(first_run, release):
  uri = first_run.outputs()['MovieLensExampleGen.catalog'].uri
  movies = [feature_values(e) for e in read_examples(uri, 'catalog')]
  assert sorted(m[f.MOVIE_TITLE] for m in movies) == sorted(m.title for m in release.movies)
  assert {frozenset(m) for m in movies} == {frozenset({f.MOVIE_ID, f.MOVIE_TITLE,
                                                       f.MOVIE_GENRES})}


def test_schema_describes_every_feature(first_run):
  uri = first_run.outputs()['SchemaGen.schema'].uri
  with open(os.path.join(uri, 'schema.pbtxt')) as file:
    schema = text_format.Parse(file.read(), schema_pb2.Schema())
  assert {feature.name for feature in schema.feature} == TFDS_FEATURES


def test_a_second_identical_run_is_served_from_the_cache(first_run):
  again = run_pipeline(first_run.config.data.data_dir, first_run.config.local.output_dir,
                       *TRAINING_FLAGS)
  assert again.exit_code == 0, again.stderr
  # Only the resolver of the latest blessed model runs (it has no cache: it queries).
  assert 'Done: 11 components, 1 ran, 10 reused from the cache' in again.stdout
  assert (again.outputs()['MovieLensExampleGen.examples'].uri
          == first_run.outputs()['MovieLensExampleGen.examples'].uri)


def test_the_tuner_ran_its_trials_and_the_trainer_took_the_best(first_run):
  from tests.pipeline_run import inspect_at, inspect_json_at
  tuning = inspect_json_at(first_run.config.local.output_dir, 'tuning')
  trials = tuning['trials']
  assert len(trials) == 2 and {t['status'] for t in trials} == {'COMPLETED'}
  assert all(t['seconds'] > 0 and 0 <= t['score'] <= 1 for t in trials)
  assert set(trials[0]['hyperparameters']) == set(hparams.SEARCH_SPACE)
  best = tuning['best_hyperparameters']
  top = max(t['score'] for t in trials)
  assert best in [t['hyperparameters'] for t in trials if t['score'] == top]
  # The Trainer trained with exactly the settings the Tuner chose.
  with open(os.path.join(first_run.outputs()['CatalogTrainer.model_run'].uri,
                         names.HISTORY_FILE)) as file:
    config = json.load(file)['config']
  expected = hparams.with_tuned(hparams.PRESETS['recommended'], best)
  assert {name: config[name] for name in best} == {name: getattr(expected, name)
                                                   for name in best}
  assert first_run.outputs()['CatalogTuner.tuner_results'].properties['trials'] == 2
  code, out, _ = inspect_at(first_run.config.local.output_dir, 'tuning')
  assert code == 0 and '2 trials' in out and 'the Trainer took:' in out


CODE_RUNNING = {  # component id: where its fingerprint sits among its settings
    'MovieLensExampleGen': 'code_version', 'ValidationGate': 'code_version',
    'Transform': 'custom_config', 'CatalogTrainer': 'custom_config',
    'RetrievalEvaluator': 'code_version', 'ServingPusher': 'custom_config'}


def fingerprints(root=None):
  """Each code-running component's fingerprint, computed over the project under root."""
  from pipeline import fingerprint, pipeline as pipeline_module
  from pipeline import configs
  original = fingerprint.source_fingerprint
  pipeline_module.source_fingerprint = lambda *modules: original(
      *modules, root=root or names.REPO_ROOT)
  try:
    config = configs.LocalConfig()
    built = pipeline_module.create_pipeline(config, config.local.pipeline_root,
                                            config.local.beam_args)
  finally:
    pipeline_module.source_fingerprint = original
  return {c.id: str(c.exec_properties[setting]) for c in built.components
          for name, setting in CODE_RUNNING.items() if c.id == name}


@pytest.mark.parametrize('edited, rerun', [
    ('data/layouts.py', {'MovieLensExampleGen'}),
    ('data/features.py', {'MovieLensExampleGen', 'Transform', 'CatalogTrainer',
                           'RetrievalEvaluator'}),
    ('modules/preprocessing.py', {'Transform'}),
    ('modules/metrics.py', {'CatalogTrainer', 'RetrievalEvaluator'}),
    ('components/pusher.py', {'ServingPusher'}),
    ('components/validation_gate.py', {'ValidationGate'}),
    ('inspector/queries.py', set()),  # the inspector runs in no component
    # The components whose code reads the shared names (keys, files, splits).
    ('shared/names.py', {'MovieLensExampleGen', 'Transform', 'CatalogTrainer',
                         'RetrievalEvaluator', 'ServingPusher'}),
])
def test_editing_code_changes_the_fingerprint_of_exactly_the_components_that_run_it(
    edited, rerun, tmp_path):
  """A copy of the project's packages, one file edited: the components whose fingerprint
  changes (and so run again, with what is downstream of them) are those importing it."""
  import shutil
  for package in ('components', 'data', 'inspector', 'modules', 'pipeline', 'shared'):
    shutil.copytree(os.path.join(names.REPO_ROOT, package), tmp_path / package,
                    ignore=shutil.ignore_patterns('__pycache__'))
  before = fingerprints(str(tmp_path))
  assert before == fingerprints()  # the copy fingerprints as the original
  with open(tmp_path / edited, 'a') as file:
    file.write('\n# an edit\n')
  after = fingerprints(str(tmp_path))
  assert {name for name in CODE_RUNNING if before[name] != after[name]} == rerun



def test_the_csv_layout_runs_through_the_whole_pipeline(tmp_path):
  """MovieLens 20M/25M's layout has no user features at all: asked for, the model works
  without them. Trained with the tutorial's preset, one epoch. (The 1M layout runs through
  the whole pipeline in test_training_e2e.py.)"""
  from modules import serving
  release = synthetic.make_clustered_release(num_users=60, num_movies=120, seed=2)
  data_dir = synthetic.write_grouplens_csv(release, str(tmp_path / 'data'))
  run = run_pipeline(data_dir, str(tmp_path / 'out'), '--preset', 'tutorial', '--epochs', '1',
                     '--min-lift', '0', '--user-features')
  assert run.exit_code == 0, run.stderr
  assert 'candidate titles, in-batch softmax:' in run.stdout  # the tutorial's
  outputs = run.outputs()
  assert outputs['MovieLensExampleGen.examples'].properties['data_layout'] == 'grouplens-csv'
  examples = [feature_values(e) for e in read_examples(
      outputs['MovieLensExampleGen.examples'].uri, 'train')]
  assert not {f.USER_GENDER, f.BUCKETIZED_USER_AGE} & set(examples[0])
  with open(os.path.join(outputs['RetrievalEvaluator.evaluation'].uri,
                         names.EVALUATION_FILE)) as file:
    report = json.load(file)
  assert set(report['slices']) == {'user_training_ratings'}
  assert signature_names(outputs['CatalogTrainer.model'].uri) == set(serving.SIGNATURES)
  with open(os.path.join(outputs['CatalogTrainer.model_run'].uri, names.HISTORY_FILE)) as file:
    history = json.load(file)
  # TFRS' published settings, one epoch of them.
  assert history['config'] == {**hparams.PRESETS['tutorial'].to_json_dict(), 'epochs': 1,
                               'user_features': True}
  assert len(history['history']) == 1
