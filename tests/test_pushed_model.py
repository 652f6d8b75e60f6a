"""The model the Pusher shipped, as a serving system uses it (conftest.gated_runs): its
signatures, the catalog beside it, odd and bad requests (k per request: test_serving_k.py)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from modules import serving
from pipeline import configs
from shared import names

K = configs.Serving().serving_k  # what the gated runs serve: the default


@pytest.fixture(scope='module')
def pushed(gated_runs):
  """The latest pushed version's directory, and the run that trained it."""
  run = gated_runs.better
  return run.outputs()['ServingPusher.pushed_model'].properties['pushed_destination'], run


@pytest.fixture(scope='module')
def model(pushed):
  return tf.saved_model.load(pushed[0])


def export_check(run):
  with open(os.path.join(run.outputs()['CatalogTrainer.model_run'].uri,
                         names.EXPORT_CHECK_FILE)) as file:
    return json.load(file)


SCRIPT = '''
import importlib.util, json, sys
import tensorflow as tf
assert importlib.util.find_spec('modules') is None, 'the project must not be importable here'
directory, probe = sys.argv[1], json.load(open(sys.argv[2]))
model = tf.saved_model.load(directory)
users = tf.constant(probe['user_id'])
timestamps = tf.constant(probe['timestamp'], tf.int64)
examples = [tf.train.Example(features=tf.train.Features(feature={
    'user_id': tf.train.Feature(bytes_list=tf.train.BytesList(value=[u.encode()])),
    'timestamp': tf.train.Feature(int64_list=tf.train.Int64List(value=[t]))}))
    .SerializeToString() for u, t in zip(probe['user_id'], probe['timestamp'])]
print(json.dumps({
    'signatures': sorted(model.signatures),
    'serving_default': model.signatures['serving_default'](
        examples=tf.constant(examples))['embedding'].numpy().tolist(),
    'embed': model.signatures['embed'](user_id=users, timestamp=timestamps)[
        'embedding'].numpy().tolist(),
    'titles': [[t.decode() for t in row] for row in model.signatures['retrieve'](
        user_id=users, timestamp=timestamps, k=tf.constant(10))['titles'].numpy()],
}))
'''


def test_in_a_process_with_only_tensorflow_it_answers_as_the_trained_model(pushed, tmp_path):
  directory, run = pushed
  check = export_check(run)
  probe = tmp_path / 'probe.json'
  probe.write_text(json.dumps({name: check[name] for name in ('user_id', 'timestamp')}))
  env = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
  result = subprocess.run([sys.executable, '-I', '-c', SCRIPT, directory, str(probe)],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**env, 'TF_CPP_MIN_LOG_LEVEL': '3'})
  assert result.returncode == 0, result.stderr[-3000:]
  answer = json.loads(result.stdout.strip().splitlines()[-1])
  assert answer['signatures'] == sorted(serving.SIGNATURES + serving.FEATURE_SIGNATURES)
  # The probe holds an unknown user and timestamps far outside the data's range.
  assert 'no-such-user' in check['user_id'] and 0 in check['timestamp']
  for name in ('serving_default', 'embed'):
    np.testing.assert_allclose(answer[name], check['embedding'], atol=1e-5)
  assert answer['titles'] == check['top_titles']


def retrieve(model, users, timestamps, exclude=None):
  inputs = {'user_id': tf.constant(users), 'timestamp': tf.constant(timestamps, tf.int64),
            'k': tf.constant(K)}
  if exclude is None:
    out = model.signatures['retrieve'](**inputs)
  else:
    out = model.signatures['retrieve_excluding'](**inputs, exclude=tf.constant(exclude))
  return [[t.decode() for t in row] for row in out['titles'].numpy()], out['scores'].numpy()


@pytest.mark.parametrize('batch', [1, 5000])
def test_any_user_at_any_time_gets_k_titles_in_batches_of_one_or_thousands(model, batch):
  rng = np.random.default_rng(batch)
  users = [str(u) for u in rng.integers(1, 200, batch)]  # ids above 120 are unknown
  timestamps = rng.integers(0, 2**40, batch)  # mostly far outside 1997-98
  titles, scores = retrieve(model, users, timestamps)
  assert len(titles) == batch and {len(row) for row in titles} == {K}
  assert np.isfinite(scores).all() and (np.diff(scores, axis=1) <= 0).all()


def test_retrieval_is_brute_force_over_the_exported_catalog(pushed, model):
  titles_file, embeddings = serving.read_catalog(pushed[0])
  users, timestamps = ['1', '2', 'stranger'], [880_000_000, 0, 890_000_000]
  queries = model.signatures['embed'](user_id=tf.constant(users), timestamp=tf.constant(
      timestamps, tf.int64))['embedding'].numpy()
  expected = np.argsort(-(queries @ embeddings.T), axis=1, kind='stable')[:, :K]
  titles, scores = retrieve(model, users, timestamps)
  assert titles == [[titles_file[i] for i in row] for row in expected]
  np.testing.assert_allclose(scores, np.sort(queries @ embeddings.T, axis=1)[:, ::-1][
      :, :K], rtol=1e-5, atol=1e-5)
  assert len(titles_file) == 300 and embeddings.shape == (300, 32)


def test_the_candidate_tower_beside_it_embeds_the_catalog_as_exported(pushed):
  directory, run = pushed
  titles, embeddings = serving.read_catalog(directory)
  tower = tf.keras.models.load_model(os.path.join(run.outputs()['CatalogTrainer.model'].uri,
                                                  names.CANDIDATE_TOWER_DIR))
  np.testing.assert_allclose(tower(tf.constant(titles)).numpy(), embeddings, atol=1e-5)


def test_excluded_titles_are_left_out_and_the_rest_keep_their_order(model):
  users, timestamps = ['1', '7'], [880_000_000, 885_000_000]
  titles, _ = retrieve(model, users, timestamps)
  exclude = [titles[0][:3] + ['', 'Not A Movie (1900)'], titles[1][5:6] + [''] * 4]
  kept, scores = retrieve(model, users, timestamps, exclude)
  assert kept[0][:K - 3] == titles[0][3:]
  assert kept[1][:K - 1] == titles[1][:5] + titles[1][6:]
  assert not set(exclude[0]) & set(kept[0]) and np.isfinite(scores).all()


@pytest.fixture(scope='module')
def fuzzed(pushed):
  """tests/serving_fuzz.py's bad requests, in a process with only TensorFlow."""
  env = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
  result = subprocess.run(
      [sys.executable, '-I', os.path.join(os.path.dirname(__file__), 'serving_fuzz.py'),
       pushed[0], str(K)], capture_output=True, text=True, env={**env, 'TF_CPP_MIN_LOG_LEVEL': '3'})
  assert result.returncode == 0, f'a request crashed the process:\n{result.stderr[-3000:]}'
  return json.loads(result.stdout.strip().splitlines()[-1])


ANSWERS = {  # a sane answer: the shape of each output (scores finite)
    'retrieve: 100,000 queries': {'titles': [100_000, K], 'scores': [100_000, K]},
    'embed: user ids not UTF-8': {'embedding': [3, 32]},
    'embed: a 1 MB user id': {'embedding': [1, 32]},
    'retrieve: negative timestamps': {'titles': [3, K], 'scores': [3, K]},
    'retrieve: far-future timestamps': {'titles': [2, K], 'scores': [2, K]},
    'retrieve_excluding: unknown titles only': {'titles': [2, K], 'scores': [2, K]},
    'retrieve_excluding: padding only': {'titles': [2, K], 'scores': [2, K]},
    'retrieve_excluding: no columns': {'titles': [2, K], 'scores': [2, K]},
    'retrieve_excluding: 5,000 columns': {'titles': [2, K], 'scores': [2, K]},
    'retrieve_excluding: a vector, one title per query': {'titles': [2, K], 'scores': [2, K]},
    'retrieve: k one per query': {'titles': [2, K], 'scores': [2, K]},
}
ERRORS = {  # a clear error: its type and what its message says
    'embed: empty batch': ('InvalidArgumentError', 'empty request'),
    'retrieve: empty batch': ('InvalidArgumentError', 'empty request'),
    'serving_default: empty batch': ('InvalidArgumentError', 'empty request'),
    'retrieve: lengths differ': ('InvalidArgumentError', 'must have the same length'),
    'retrieve: user ids as a matrix': ('InvalidArgumentError', 'must have the same length'),
    'retrieve_excluding: rows differ': ('InvalidArgumentError', 'one row per query'),
    'embed: timestamps as floats': ('InvalidArgumentError', 'int64 tensor but is a float'),
    'embed: user ids as numbers': ('InvalidArgumentError', 'string tensor but is a int64'),
    'retrieve: a missing input': ('TypeError', "missing a required argument: 'timestamp'"),
    'retrieve: no k': ('TypeError', "missing a required argument: 'k'"),
    'retrieve: k 0': ('InvalidArgumentError', f'k is 0: it must be between 1 and {K}'),
    'retrieve_excluding: k above the maximum': ('InvalidArgumentError',
                                                f'k is {K + 1}: it must be between 1 and {K}'),
    'retrieve: k differing between queries': ('InvalidArgumentError',
                                              'k must be one number for the whole request'),
    'serving_default: not an Example': ('InvalidArgumentError', 'Could not parse example'),
    'serving_default: an Example without user_id': ('InvalidArgumentError',
                                                    'Feature: user_id (data type: string) '
                                                    'is required'),
}


def test_every_bad_request_gets_a_clear_error_or_a_sane_answer_never_a_crash(fuzzed):
  assert set(fuzzed) == set(ANSWERS) | set(ERRORS)
  for case, shapes in ANSWERS.items():
    answer = fuzzed[case].get('answer')
    assert answer is not None, (case, fuzzed[case])
    assert {name: value['shape'] for name, value in answer.items()} == shapes, case
    assert all(value['finite'] in (True, None) for value in answer.values()), case
  for case, (kind, words) in ERRORS.items():
    assert fuzzed[case].get('error') == kind and words in fuzzed[case]['message'], (
        case, fuzzed[case])


def test_the_version_directory_is_what_tf_serving_reads(pushed):
  """TF Serving loads the MetaGraph tagged 'serve' of <base>/<version>/saved_model.pb and
  calls its SignatureDefs by name, each input and output a plain tensor."""
  from tensorflow.core.protobuf import saved_model_pb2
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(pushed[0], 'saved_model.pb'), 'rb') as file:
    saved_model.ParseFromString(file.read())
  [graph] = [g for g in saved_model.meta_graphs if 'serve' in g.meta_info_def.tags]
  signatures = {name: ({k: v.dtype for k, v in sig.inputs.items()}, set(sig.outputs))
                for name, sig in graph.signature_def.items() if not name.startswith('__')}
  string, int64, int32 = (dtype.as_datatype_enum for dtype in (tf.string, tf.int64, tf.int32))
  assert signatures == {
      'serving_default': ({'examples': string}, {'embedding'}),
      'embed': ({'user_id': string, 'timestamp': int64}, {'embedding'}),
      'retrieve': ({'user_id': string, 'timestamp': int64, 'k': int32}, {'titles', 'scores'}),
      'retrieve_excluding': ({'user_id': string, 'timestamp': int64, 'exclude': string,
                              'k': int32},
                             {'titles', 'scores'}),
      # The release has user features (a request may carry them).
      **{name: ({'user_id': string, 'timestamp': int64,
                 'bucketized_user_age': tf.float32.as_datatype_enum, 'user_gender': int64,
                 'user_occupation_text': string, 'user_zip_code': string, **k}, outputs)
         for name, k, outputs in (('embed_with_features', {}, {'embedding'}),
                                  ('retrieve_with_features', {'k': int32}, {'titles', 'scores'}))},
  }
  assert all(tensor.name for sig in graph.signature_def.values()
             for tensor in list(sig.inputs.values()) + list(sig.outputs.values()))
