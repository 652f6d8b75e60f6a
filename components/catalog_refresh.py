"""CatalogRefresh: the latest blessed model, served over the release's current catalog.

`runner_local.py --refresh-catalog` (and the same flag of runner_kubeflow.py) runs it in place
of training: ExampleGen reads the release, a Resolver finds the latest blessed model, this
component embeds every title of the catalog split with that model's candidate tower and
exports the served model over them (modules/catalog_refresh.py: the known titles' embeddings
are checked to be unchanged), and the Evaluator and the Pusher treat its Model as they treat
the Trainer's. Its Model artifact is laid out as the Trainer's (Format-Serving/ and the
candidate tower beside it); its ModelRun holds names.REFRESH_FILE (what changed, the check's
figures) and names.EXPORT_CHECK_FILE.
"""
import json
import os
from typing import Any, Dict, List

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.utils import io_utils, path_utils

from components import catalog_trainer
from modules import catalog_refresh
from shared import names

BLESSED_MODEL_KEY = 'blessed_model'
MODEL_KEY = 'model'
MODEL_RUN_KEY = 'model_run'


class CatalogRefreshSpec(ComponentSpec):
  PARAMETERS = {
      names.SERVING_K: ExecutionParameter(type=int),
      names.CODE_VERSION: ExecutionParameter(type=str, optional=True),
  }
  INPUTS = {
      BLESSED_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
      catalog_trainer.CATALOG_KEY: ChannelParameter(type=standard_artifacts.Examples),
  }
  OUTPUTS = {
      MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
      MODEL_RUN_KEY: ChannelParameter(type=standard_artifacts.ModelRun),
  }


class Executor(base_executor.BaseExecutor):
  """Refreshes the blessed model's catalog (modules/catalog_refresh.py)."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    """Writes the blessed model over the current catalog as a new Model artifact.

    Args:
      input_dict: blessed_model (the Resolver's latest blessed Model) and catalog (ExampleGen's
        examples with the catalog split).
      output_dict: model (the refreshed Model: Format-Serving and the candidate tower) and
        model_run (names.REFRESH_FILE, names.EXPORT_CHECK_FILE).
      exec_properties: names.SERVING_K, the most titles a retrieve request may ask for.

    Raises:
      modules.catalog_refresh.CatalogChangedError: a title the blessed model serves would
        change its embedding.
    """
    blessed = artifact_utils.get_single_instance(input_dict[BLESSED_MODEL_KEY])
    model = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
    model_run = artifact_utils.get_single_instance(output_dict[MODEL_RUN_KEY])
    served_dir = path_utils.serving_model_path(blessed.uri)
    output_dir = path_utils.serving_model_path(model.uri)
    report, exported = catalog_refresh.refresh(
        served_dir, os.path.join(blessed.uri, names.CANDIDATE_TOWER_DIR),
        catalog_trainer.catalog_files(input_dict), output_dir,
        int(exec_properties[names.SERVING_K]))
    if not exported:  # the same model: the Pusher finds it served already
      io_utils.copy_dir(served_dir, output_dir)
    io_utils.copy_dir(os.path.join(blessed.uri, names.CANDIDATE_TOWER_DIR),
                      os.path.join(model.uri, names.CANDIDATE_TOWER_DIR))
    check = report.pop('export_check', None)
    report['blessed_model'] = blessed.uri
    io_utils.write_string_file(os.path.join(model_run.uri, names.REFRESH_FILE),
                               json.dumps(report, indent=2))
    if check is not None:
      io_utils.write_string_file(os.path.join(model_run.uri, names.EXPORT_CHECK_FILE),
                                 json.dumps(check))


class CatalogRefresh(base_component.BaseComponent):
  """Serves the latest blessed model over the current catalog, without training."""

  SPEC_CLASS = CatalogRefreshSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, blessed_model: types.BaseChannel, catalog: types.BaseChannel,
               serving_k: int, code_version: str = ''):
    """A CatalogRefresh.

    Args:
      blessed_model: the latest blessed Model (a Resolver's), whose towers serve.
      catalog: ExampleGen's examples, whose catalog split is the current catalog.
      serving_k: the most titles a retrieve request may ask for (--serving-k).
      code_version: a fingerprint of this code, so that editing it refreshes again.
    """
    super().__init__(spec=CatalogRefreshSpec(
        blessed_model=blessed_model, catalog=catalog, serving_k=serving_k,
        code_version=code_version, model=types.Channel(type=standard_artifacts.Model),
        model_run=types.Channel(type=standard_artifacts.ModelRun)))
