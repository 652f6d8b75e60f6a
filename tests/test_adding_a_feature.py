"""Adding a user feature is one entry in the feature registry (docs/model.md, "Adding a
feature"): in a copy of the project, one new entry of data/features.py reaches Transform,
the query tower and the served model's signatures, with nothing else edited.
"""
import json
import pathlib
import shutil
import subprocess
import sys

from shared import names

ROOT = pathlib.Path(names.REPO_ROOT)
DEVICE = 'user_device'
DEVICE_INDEX = 'user_device_index'
# The entry docs/model.md shows: a user feature read as an index into its vocabulary.
ENTRY = (f"    Feature('{DEVICE}', STRING, USER, tower=QUERY, "
         f"rule=Vocabulary('{DEVICE_INDEX}'), unknown=''),\n")

# Runs in the copy: preprocessing_fn through tf.Transform's Beam implementation on rows that
# carry the new feature, then the query tower and the served model built as the Trainer
# builds them, exported and loaded back.
SCRIPT = '''
import json, os, sys
from shared import env
env.use_legacy_keras()
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
from modules import features, hparams, model, preprocessing, serving
from shared import names

work = sys.argv[1]
DEVICE = %(device)r
spec = features.raw_feature_spec([features.USER_ID, features.TIMESTAMP, features.MOVIE_TITLE,
                                  features.USER_GENDER, DEVICE])
devices = [b'phone', b'tv', b'phone', b'laptop', b'tv', b'phone']
rows = [{features.USER_ID: str(i %% 3).encode(), features.TIMESTAMP: 1000 * i,
         features.MOVIE_TITLE: b'Movie %%d (1995)' %% (i %% 4), features.USER_GENDER: i %% 2,
         DEVICE: device} for i, device in enumerate(devices)]
metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
with tft_beam.Context(temp_dir=os.path.join(work, 'tmp')):
  (transformed, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
      lambda inputs: preprocessing.preprocessing_fn(
          inputs, {names.TIMESTAMP_BOUNDARIES: 3, names.MAX_TITLE_TOKENS: 100}))
_ = transform_fn | tft_beam.WriteTransformFn(os.path.join(work, 'transform'))
# As TFX's Transform does: the raw schema beside the graph, which the served model reads.
metadata_io.write_metadata(metadata, os.path.join(work, 'transform', 'metadata'))
output = tft.TFTransformOutput(os.path.join(work, 'transform'))
index = features.USER_FEATURES[DEVICE]
vocabulary = output.vocabulary_by_name(index)

transformed_spec = output.transformed_feature_spec()
buckets = {name: output.num_buckets_for_transformed_feature(name)
           for name in features.USER_FEATURES.values() if name in transformed_spec}
config = hparams.preset('recommended', layer_sizes=[8], embedding_dim=4, dropout=0.0)
tower = model.QueryTower(output.num_buckets_for_transformed_feature(features.USER_INDEX),
                         output.num_buckets_for_transformed_feature(features.TIMESTAMP_BUCKET),
                         config, buckets)
titles = ['Movie %%d (1995)' %% i for i in range(4)]
served = serving.QueryModel(serving.QuerySide(output, tower), titles,
                            np.eye(4, 8, dtype=np.float32), max_k=2)
serving.export(os.path.join(work, 'served'), served)
loaded = tf.saved_model.load(os.path.join(work, 'served'))
signature = loaded.signatures['embed_with_features']
query = {features.USER_ID: tf.constant(['1', '1']),
         features.TIMESTAMP: tf.constant([2000, 2000], tf.int64),
         features.USER_GENDER: tf.constant([1, 1], tf.int64),
         **{name: tf.constant([''] * 2) for name in (features.USER_OCCUPATION_TEXT,
                                                     features.USER_ZIP_CODE)},
         features.BUCKETIZED_USER_AGE: tf.constant([-1.0, -1.0])}
by_device = signature(**query, **{DEVICE: tf.constant(['phone', 'tv'])})['embedding'].numpy()
print(json.dumps({
    'transformed': sorted(transformed[0]),
    'indexes': [vocabulary[row[index]].decode() for row in transformed],
    'tower_inputs': list(tower.feature_names),
    'signature_inputs': {name: spec.dtype.name for name, spec in
                         signature.structured_input_signature[1].items()},
    'registry': features.BY_NAME[DEVICE].name and sys.modules['data.features'].__file__,
    'phone_and_tv_differ': bool(np.abs(by_device[0] - by_device[1]).max() > 1e-6),
}))
'''


def add_feature(copy: pathlib.Path) -> None:
  """The one edit: a new entry at the end of the registry's table."""
  registry = copy / 'data' / 'features.py'
  text = registry.read_text()
  end = text.index('\n)\nBY_NAME')
  registry.write_text(text[:end + 1] + ENTRY + text[end + 1:])


def test_one_registry_entry_reaches_transform_the_tower_and_the_serving_signatures(tmp_path):
  copy = tmp_path / 'project'
  for package in ('shared', 'data', 'modules'):
    shutil.copytree(ROOT / package, copy / package,
                    ignore=shutil.ignore_patterns('__pycache__', 'movielens'))
  add_feature(copy)
  result = subprocess.run(
      [sys.executable, '-c', SCRIPT % {'device': DEVICE}, str(tmp_path)], cwd=copy,
      env={'PATH': '/usr/bin:/bin', 'PYTHONPATH': str(copy), 'HOME': str(tmp_path)},
      capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  found = json.loads(result.stdout.strip().splitlines()[-1])
  assert found['registry'] == str(copy / 'data' / 'features.py')  # the copy's, edited
  assert DEVICE_INDEX in found['transformed']
  assert found['indexes'] == ['phone', 'tv', 'phone', 'laptop', 'tv', 'phone']
  assert DEVICE_INDEX in found['tower_inputs']
  assert found['signature_inputs'][DEVICE] == 'string'
  assert found['phone_and_tv_differ']  # the tower embeds the feature
