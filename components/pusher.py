"""ServingPusher: TFX's Pusher, which does not push a model that is already served.

The stock Pusher writes every blessed model it is given to a new version directory. A
model is blessed again when it is evaluated again (for instance when a second identical
run compares it with itself as the latest blessed model), and would then be served twice
under two versions. This one first looks for a version directory holding the same
SavedModel (the same fingerprint.pb, which hashes the graph, signatures and weights) and
records that version instead of copying.

Pushes are atomic: the stock Pusher writes the new version into a staging directory beside
the versions (`.staging-<version>`, a name TF Serving ignores: it loads numbered
directories only), which is then renamed into place. A server polling the serving
directory never sees a half-written version; a push killed half-way leaves only a staging
directory, which the next push removes. (On object stores such as GCS a rename is a copy;
TFX's own order, saved_model.pb last, then guards the reader.)
"""
import logging
import os
import time
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.components.pusher.component import Pusher
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs as keys
from tfx.utils import io_utils, proto_utils

from shared import names

logger = logging.getLogger(f'{names.LOGGER}.pusher')
FINGERPRINT_FILE = 'fingerprint.pb'


def served_version(model_path: str, base_directory: str) -> Optional[str]:
  """The version of a served model that is the same SavedModel as another.

  Args:
    model_path: the SavedModel's directory.
    base_directory: the serving directory, one numbered directory a version.

  Returns:
    The newest version whose fingerprint.pb equals the model's, or None when none does (or
    the model has no fingerprint).
  """
  fingerprint = os.path.join(model_path, FINGERPRINT_FILE)
  if not fileio.exists(fingerprint) or not fileio.isdir(base_directory):
    return None
  with fileio.open(fingerprint, 'rb') as file:
    expected = file.read()
  versions = [name.rstrip('/') for name in fileio.listdir(base_directory)]
  for version in sorted((v for v in versions if v.isdigit()), key=int, reverse=True):
    candidate = os.path.join(base_directory, version, FINGERPRINT_FILE)
    if fileio.exists(candidate):
      with fileio.open(candidate, 'rb') as file:
        if file.read() == expected:
          return version
  return None


STAGING_PREFIX = '.staging-'


def remove_staging_leftovers(base_directory: str) -> List[str]:
  """Removes what killed pushes left in the serving directory.

  Args:
    base_directory: the serving directory.

  Returns:
    The paths of the staging directories removed.
  """
  if not fileio.isdir(base_directory):
    return []
  leftovers = [os.path.join(base_directory, name.rstrip('/'))
               for name in fileio.listdir(base_directory) if name.startswith(STAGING_PREFIX)]
  for path in leftovers:
    fileio.rmtree(path)
  return leftovers


class Executor(pusher_executor.Executor):
  """TFX's Pusher executor, staging each push and recording a served model's version."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    """Pushes a blessed model as a new version, unless the same model is already served.

    Args:
      input_dict: model and model_blessing, as TFX's Pusher takes them.
      output_dict: pushed_model, whose properties (names.PUSHED, names.PUSHED_VERSION,
        names.PUSHED_DESTINATION) say what was pushed, or the version already serving it.
      exec_properties: TFX's Pusher execution properties (push_destination, ...).
    """
    destination = proto_utils.json_to_proto(exec_properties[keys.PUSH_DESTINATION_KEY],
                                            pusher_pb2.PushDestination())
    base_directory = destination.filesystem.base_directory
    if base_directory and self.CheckBlessing(input_dict):
      model_path = self.GetModelPath(input_dict)
      version = served_version(model_path, base_directory)
      if version is not None:
        model_push = artifact_utils.get_single_instance(output_dict[keys.PUSHED_MODEL_KEY])
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, os.path.join(base_directory, version), version)
        logger.info('This model is already served as version %s: nothing new to push.',
                    version)
        return
    if not base_directory:
      super().Do(input_dict, output_dict, exec_properties)
      return
    for leftover in remove_staging_leftovers(base_directory):
      logger.warning('Removed %s, left by a push that did not finish.', leftover)
    # The stock Pusher writes <staging>/<version>/, which is then renamed into place.
    staging = os.path.join(base_directory, f'{STAGING_PREFIX}{os.getpid()}-{time.time_ns()}')
    destination.filesystem.base_directory = staging
    super().Do(input_dict, output_dict, {
        **exec_properties, keys.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination)})
    pushed = artifact_utils.get_single_instance(output_dict[keys.PUSHED_MODEL_KEY])
    if pushed.get_int_custom_property(names.PUSHED) == 1:
      staged = pushed.get_string_custom_property(names.PUSHED_VERSION)
      version = staged
      while fileio.exists(os.path.join(base_directory, version)):  # two pushes in a second
        version = str(int(version) + 1)
      final = os.path.join(base_directory, version)
      fileio.rename(os.path.join(staging, staged), final)
      self._MarkPushed(pushed, final, version)
      logger.info('Pushed as version %s: %s', version, final)
    if fileio.exists(staging):
      fileio.rmtree(staging)


class ServingPusher(Pusher):
  """Pushes a blessed model to `<serving_dir>/<version>/`, unless that model is served."""

  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel,
               serving_dir: str, code_version: str = ''):
    """A ServingPusher.

    Args:
      model: the Trainer's model, whose serving SavedModel is pushed.
      model_blessing: the Evaluator's blessing of it: only a blessed model is pushed.
      serving_dir: where the versions are served from, `<serving_dir>/<version>/`.
      code_version: a fingerprint of this code, so that editing it pushes again.
    """
    super().__init__(model=model, model_blessing=model_blessing,
                     push_destination=pusher_pb2.PushDestination(
                         filesystem=pusher_pb2.PushDestination.Filesystem(
                             base_directory=serving_dir)),
                     custom_config={names.CODE_VERSION: code_version})
