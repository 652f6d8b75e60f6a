"""CatalogTrainer: TFX's Trainer with the movie catalog as a declared input.

The candidates of a retrieval model are the whole catalog, which is not in the training
examples (movies nobody rated in training are still candidates). The stock Trainer has no
input for it, and passing an artifact's location through custom_config would freeze it
when the pipeline is compiled; here the catalog is an input channel, and the executor
hands its files to run_fn at run time as `fn_args.custom_config['catalog_files']`.
"""
import json
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.components.trainer.component import Trainer
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import io_utils

from shared import names

CATALOG_KEY = 'catalog'


class CatalogTrainerSpec(standard_component_specs.TrainerSpec):
  INPUTS = {
      **standard_component_specs.TrainerSpec.INPUTS,
      CATALOG_KEY: ChannelParameter(type=standard_artifacts.Examples),
  }


class Executor(trainer_executor.GenericExecutor):
  """GenericExecutor that also tells run_fn where the catalog's examples are."""

  def _GetFnArgs(self, input_dict: Dict[str, List[types.Artifact]],
                 output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]):
    fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
    fn_args.custom_config = {**(fn_args.custom_config or {}),
                             'catalog_files': catalog_files(input_dict)}
    return fn_args


def catalog_files(input_dict: Dict[str, List[types.Artifact]]) -> str:
  """The file pattern of the catalog's examples among a component's inputs."""
  catalog = artifact_utils.get_single_instance(input_dict[CATALOG_KEY])
  return io_utils.all_files_pattern(artifact_utils.get_split_uri([catalog], names.CATALOG_SPLIT))


class CatalogTrainer(Trainer):
  """Trains with `run_fn` on transformed examples, with the catalog as the candidates."""

  SPEC_CLASS = CatalogTrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, examples: types.BaseChannel, transform_graph: types.BaseChannel,
               catalog: types.BaseChannel, run_fn: str,
               custom_config: Optional[Dict[str, Any]] = None,
               hyperparameters: Optional[types.BaseChannel] = None):
    """`hyperparameters`: a Tuner's best, which override custom_config's settings."""
    spec = CatalogTrainerSpec(
        examples=examples, transform_graph=transform_graph, catalog=catalog, run_fn=run_fn,
        hyperparameters=hyperparameters,
        # run_fn trains by epochs (custom_config), not by steps.
        train_args=trainer_pb2.TrainArgs(), eval_args=trainer_pb2.EvalArgs(),
        custom_config=json.dumps(custom_config or {}, sort_keys=True),
        model=types.Channel(type=standard_artifacts.Model),
        model_run=types.Channel(type=standard_artifacts.ModelRun))
    base_component.BaseComponent.__init__(self, spec=spec)
