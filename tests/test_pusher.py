"""ServingPusher's executor on real artifacts: a model already served is not pushed twice.

The same SavedModel blessed a second time (a second Evaluator outcome, as when an
identical run compares a model with itself) must leave the serving directory as it was:
no new version directory, the served files untouched, and the PushedModel recording the
version that already serves it.
"""
import hashlib
import os
import pathlib
from typing import Dict

import tensorflow as tf
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs as keys
from tfx.utils import proto_utils

from components import pusher
from shared import names


def _digests(directory: pathlib.Path) -> Dict[str, str]:
  return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(directory.rglob('*')) if p.is_file()}


def _model(root: pathlib.Path, name: str, scale: float) -> standard_artifacts.Model:
  """A Model artifact holding a small SavedModel (its Format-Serving directory)."""
  module = tf.Module()
  module.scale = tf.Variable(scale)
  module.call = tf.function(lambda x: x * module.scale,
                            input_signature=[tf.TensorSpec([None], tf.float32)])
  model = standard_artifacts.Model()
  model.uri = str(root / name)
  tf.saved_model.save(module, os.path.join(model.uri, 'Format-Serving'))
  return model


def _push(root: pathlib.Path, model: standard_artifacts.Model, serving: pathlib.Path,
          run: str) -> standard_artifacts.PushedModel:
  """One Pusher execution of `model` with a fresh blessing of it."""
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(root / f'blessing-{run}')
  blessing.set_int_custom_property(names.BLESSED, 1)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(root / f'pushed-{run}')
  os.makedirs(pushed.uri)
  destination = pusher_pb2.PushDestination(
      filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(serving)))
  pusher.Executor().Do(
      {keys.MODEL_KEY: [model], keys.MODEL_BLESSING_KEY: [blessing]},
      {keys.PUSHED_MODEL_KEY: [pushed]},
      {keys.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination),
       keys.CUSTOM_CONFIG_KEY: '{}'})
  return pushed


def test_the_same_model_blessed_twice_is_served_once(tmp_path):
  serving = tmp_path / 'serving'
  model = _model(tmp_path, 'model', 2.0)
  first = _push(tmp_path, model, serving, 'first')
  assert first.get_int_custom_property(names.PUSHED) == 1
  [version] = os.listdir(serving)
  served = _digests(serving)

  second = _push(tmp_path, model, serving, 'second')

  assert os.listdir(serving) == [version]
  assert _digests(serving) == served
  assert second.get_int_custom_property(names.PUSHED) == 1
  assert second.get_string_custom_property(names.PUSHED_VERSION) == version
  assert second.get_string_custom_property(names.PUSHED_DESTINATION) == str(serving / version)


def test_a_different_model_is_pushed_as_a_new_version(tmp_path):
  serving = tmp_path / 'serving'
  _push(tmp_path, _model(tmp_path, 'model-a', 2.0), serving, 'a')
  pushed = _push(tmp_path, _model(tmp_path, 'model-b', 3.0), serving, 'b')
  versions = sorted(os.listdir(serving), key=int)
  assert len(versions) == 2
  assert pushed.get_string_custom_property(names.PUSHED_VERSION) == versions[-1]
