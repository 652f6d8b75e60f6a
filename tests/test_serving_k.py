"""k chosen per request (docs/serving.md, "k, chosen per request"): a small served model built
as the Trainer builds one (tf.Transform's graph in front of a query tower, a catalog beside
it) with the default maximum k, exported and loaded back with plain TensorFlow. Every
retrieve signature is asked for several k and for k out of range, and the REST bodies of
docs/serving.md are turned into the TensorFlow call TF Serving makes of them."""
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

from modules import features, hparams, model, preprocessing, serving
from pipeline import configs
from shared import names

MAX_K = configs.Serving().serving_k  # the default maximum, which docs/serving.md shows
TITLES = [f'Movie {i} (1995)' for i in range(MAX_K + 50)]
DOC = os.path.join(names.REPO_ROOT, 'docs', 'serving.md')
RETRIEVE = ('retrieve', 'retrieve_excluding', 'retrieve_with_features')
# The release's features, as ExampleGen writes them (with user features, as 100k).
RAW_SPEC = features.raw_feature_spec([
    features.USER_ID, features.TIMESTAMP, features.MOVIE_TITLE, features.BUCKETIZED_USER_AGE,
    features.USER_GENDER, features.USER_OCCUPATION_TEXT, features.USER_ZIP_CODE])
_USERS = {b'1': (25.0, 1, b'writer', b'55414'), b'2': (18.0, 0, b'student', b'10003'),
          b'42': (35.0, 0, b'writer', b'55105')}
ROWS = [dict(zip(RAW_SPEC, (user, 880_000_000 + 1000 * i, TITLES[i].encode(), *_USERS[user])))
        for i, user in enumerate([b'1', b'2', b'42', b'1', b'2', b'42'])]


@pytest.fixture(scope='module')
def served(tmp_path_factory):
  """(the loaded SavedModel, its directory)."""
  work = str(tmp_path_factory.mktemp('served'))
  metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
  with tft_beam.Context(temp_dir=os.path.join(work, 'tmp')):
    _, transform_fn = (ROWS, metadata) | tft_beam.AnalyzeAndTransformDataset(
        lambda inputs: preprocessing.preprocessing_fn(
            inputs, configs.Transform(timestamp_boundaries=3).custom_config()))
  transform_dir = os.path.join(work, 'transform')
  _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
  # As TFX's Transform does: the raw schema beside the graph, which the served model reads.
  metadata_io.write_metadata(metadata, os.path.join(transform_dir, 'metadata'))
  output = tft.TFTransformOutput(transform_dir)
  spec = output.transformed_feature_spec()
  buckets = {name: output.num_buckets_for_transformed_feature(name)
             for name in features.USER_FEATURES.values() if name in spec}
  config = hparams.preset('recommended', layer_sizes=[8], embedding_dim=4, dropout=0.0)
  tower = model.QueryTower(output.num_buckets_for_transformed_feature(features.USER_INDEX),
                           output.num_buckets_for_transformed_feature(features.TIMESTAMP_BUCKET),
                           config, buckets)
  candidates = np.random.default_rng(0).normal(size=(len(TITLES), 8)).astype(np.float32)
  query_side = serving.QuerySide(output, tower)
  query_model = serving.QueryModel(query_side, TITLES, candidates, MAX_K)
  # More than the catalog holds is capped at its size.
  assert serving.QueryModel(query_side, TITLES, candidates, 10_000).max_k == len(TITLES)
  directory = os.path.join(work, 'model')
  serving.export(directory, query_model)
  return tf.saved_model.load(directory), directory


USERS, TIMESTAMPS = ['1', '42', 'stranger'], [880_000_000, 885_000_000, 0]


def query(name):
  """Three queries to a retrieve signature, without k."""
  inputs = {features.USER_ID: tf.constant(USERS),
            features.TIMESTAMP: tf.constant(TIMESTAMPS, tf.int64)}
  if name == 'retrieve_excluding':
    inputs['exclude'] = tf.constant([[TITLES[0], ''], ['', ''], [TITLES[3], TITLES[7]]])
  if name == 'retrieve_with_features':
    inputs.update({features.BUCKETIZED_USER_AGE: tf.constant([25.0, -1.0, 18.0]),
                   features.USER_GENDER: tf.constant([1, -1, 0], tf.int64),
                   features.USER_OCCUPATION_TEXT: tf.constant(['writer', '', 'student']),
                   features.USER_ZIP_CODE: tf.constant(['55414', '', ''])})
  return inputs


def answer(model, name, k, inputs=None):
  out = model.signatures[name](**(query(name) if inputs is None else inputs),
                               k=tf.constant(k, tf.int32))
  return [[t.decode() for t in row] for row in out['titles'].numpy()], out['scores'].numpy()


@pytest.mark.parametrize('name', RETRIEVE)
def test_any_k_up_to_the_maximum_answers_the_first_k_of_the_maximums_list(served, name):
  model, directory = served
  longest, scores = answer(model, name, MAX_K)
  assert np.array(longest).shape == (3, MAX_K) and (np.diff(scores, axis=1) <= 0).all()
  for k in (1, 10, MAX_K - 1):
    titles, top_scores = answer(model, name, k)
    assert np.array(titles).shape == (3, k), (name, k)
    assert titles == [row[:k] for row in longest], (name, k)
    np.testing.assert_allclose(top_scores, scores[:, :k], rtol=1e-6)
  if name == 'retrieve':  # and the maximum's list is the catalog's brute-force ranking
    catalog, embeddings = serving.read_catalog(directory)
    queries = model.signatures['embed'](**query(name))['embedding'].numpy()
    best = np.argsort(-(queries @ embeddings.T), axis=1, kind='stable')[:, :MAX_K]
    assert longest == [[catalog[i] for i in row] for row in best]


def range_error(k):
  return f'k is {k}: it must be between 1 and {MAX_K} (the maximum fixed at export)'


@pytest.mark.parametrize('name', RETRIEVE)
@pytest.mark.parametrize('k', [0, -1, MAX_K + 1, len(TITLES), len(TITLES) + 1])
def test_k_out_of_range_is_an_error_naming_k_and_the_range(served, name, k):
  with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(range_error(k))):
    answer(served[0], name, k)


def signature_defs(directory):
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(directory, 'saved_model.pb'), 'rb') as file:
    saved_model.ParseFromString(file.read())
  [graph] = [g for g in saved_model.meta_graphs if 'serve' in g.meta_info_def.tags]
  return graph.signature_def


@pytest.mark.parametrize('name', RETRIEVE)
def test_k_may_come_once_per_query_as_the_row_format_sends_it(served, name):
  model = served[0]
  titles, _ = answer(model, name, [10, 10, 10])
  assert titles == answer(model, name, 10)[0]
  for ks in ([10, 10, 11], []):
    with pytest.raises(tf.errors.InvalidArgumentError, match='k must be one number for the '
                       'whole request'):
      answer(model, name, ks)


def test_k_is_int32_and_its_default_that_tf_serving_reads_is_the_maximum(served):
  signatures = signature_defs(served[1])
  assert set(serving.SIGNATURES + serving.FEATURE_SIGNATURES) <= set(signatures)
  for name, signature in signatures.items():
    if name in RETRIEVE:
      k = signature.inputs[serving.K]
      # Of any shape: a scalar, or one per query.
      assert k.dtype == tf.int32.as_datatype_enum and k.tensor_shape.unknown_rank, name
      assert tf.make_ndarray(signature.defaults[serving.K]) == MAX_K, name
      assert set(signature.defaults) == {serving.K}, name
    else:
      assert serving.K not in signature.inputs and not signature.defaults, name


def rest_bodies():
  """The JSON request bodies that docs/serving.md shows."""
  with open(DOC) as file:
    blocks = re.findall(r'```json\n(.*?)```', file.read(), re.DOTALL)
  return [json.loads(block) for block in blocks]


def tensorflow_call(body, signature):
  """A predict request's body as the signature's inputs, the way TF Serving's REST API reads
  it (tensorflow_serving/util/json_tensor.cc): each input of the columnar format ("inputs")
  is one tensor; the row format's instances are stacked, input by input; either way every
  input of the signature is required (REST does not apply the SignatureDef's defaults)."""
  if 'inputs' in body:
    columns = body['inputs']
  else:
    assert all(set(instance) == set(signature.inputs) for instance in body['instances'])
    columns = {name: [instance[name] for instance in body['instances']]
               for name in signature.inputs}
  assert set(columns) == set(signature.inputs), 'Missing named input'
  return {name: tf.constant(value, tf.dtypes.as_dtype(signature.inputs[name].dtype))
          for name, value in columns.items()}


def asked_k(body):
  """The k a body sends, in columns or once per instance."""
  if 'inputs' in body:
    return body['inputs'][serving.K]
  [k] = {instance[serving.K] for instance in body['instances']}
  return k


def test_the_rest_bodies_of_the_docs_are_these_tensorflow_calls(served):
  model, directory = served
  signatures = signature_defs(directory)
  with open(DOC) as file:
    doc = file.read()
  bodies = rest_bodies()
  # Every retrieve signature; k in columns and in rows; and an error.
  assert {body['signature_name'] for body in bodies} == set(RETRIEVE)
  asked = [asked_k(body) for body in bodies]
  assert 0 in asked and any(1 <= k <= MAX_K for k in asked)
  assert any('instances' in body for body in bodies)
  for body, k in zip(bodies, asked):
    name = body['signature_name']
    inputs = tensorflow_call(body, signatures[name])
    if not 1 <= k <= MAX_K:
      # The message the page quotes is the one a client gets.
      assert range_error(k) in doc
      with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(range_error(k))):
        model.signatures[name](**inputs)
      continue
    out = model.signatures[name](**inputs)
    assert out['titles'].shape == (len(inputs[features.USER_ID]), k), body
    longest, _ = answer(model, name, MAX_K, {n: v for n, v in inputs.items() if n != serving.K})
    assert [[t.decode() for t in row] for row in out['titles'].numpy()] == [
        row[:out['titles'].shape[1]] for row in longest], body
