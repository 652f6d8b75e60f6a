"""CatalogTuner: TFX's Tuner with the movie catalog as a declared input (as CatalogTrainer).

Its executor runs TFX's own search (`tuner_fn` returns a KerasTuner tuner and its fit
arguments) and writes TFX's outputs: the best hyperparameters, which the Trainer reads, and
the tuner results. Beside the latter it writes every trial with its settings, score, state
and seconds (names.TRIALS_FILE), and records the number of trials and the best score as
properties of the artifact in ML Metadata, where the inspector reads them.
"""
import json
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.tuner import executor as tuner_executor
from tfx.components.tuner.component import Tuner
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import io_utils

from components.catalog_trainer import CATALOG_KEY, catalog_files
from shared import names

# Properties of the tuner_results artifact: how many trials ran, and the best one's score.
TRIALS_PROPERTY = 'trials'
BEST_SCORE_PROPERTY = 'best_score'


class CatalogTunerSpec(standard_component_specs.TunerSpec):
  INPUTS = {
      **standard_component_specs.TunerSpec.INPUTS,
      CATALOG_KEY: ChannelParameter(type=standard_artifacts.Examples),
  }


class Executor(tuner_executor.Executor):
  """TFX's Tuner executor, telling tuner_fn where the catalog is and keeping every trial."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    """Runs TFX's search with the catalog's files in custom_config, and keeps every trial.

    Args:
      input_dict: TFX's Tuner inputs, and the catalog's Examples at CATALOG_KEY.
      output_dict: best_hyperparameters and tuner_results, which also gets TRIALS_FILE and
        the TRIALS_PROPERTY and BEST_SCORE_PROPERTY properties.
      exec_properties: TFX's Tuner execution properties (tuner_fn, custom_config, ...).
    """
    custom_config = json.loads(exec_properties.get(
        standard_component_specs.CUSTOM_CONFIG_KEY) or '{}')
    custom_config[names.CATALOG_FILES] = catalog_files(input_dict)
    exec_properties = {**exec_properties, standard_component_specs.CUSTOM_CONFIG_KEY:
                       json.dumps(custom_config, sort_keys=True)}
    tuner = tuner_executor.search(input_dict, exec_properties, self._get_tmp_dir())
    tuner_executor.write_best_hyperparameters(tuner, output_dict)
    trials = [{'trial_id': trial.trial_id, 'status': trial.status, 'score': trial.score,
               'seconds': _metric(trial, 'seconds'), 'best_epoch': _metric(trial, 'best_epoch'),
               'hyperparameters': trial.hyperparameters.values}
              for trial in sorted(tuner.oracle.trials.values(), key=lambda t: t.trial_id)]
    results = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.TUNER_RESULTS_KEY])
    io_utils.write_string_file(f'{results.uri}/{names.TRIALS_FILE}',
                               json.dumps(trials, indent=2))
    scores = [trial['score'] for trial in trials if trial['score'] is not None]
    results.set_int_custom_property(TRIALS_PROPERTY, len(trials))
    if scores:
      results.set_float_custom_property(BEST_SCORE_PROPERTY, max(scores))


def _metric(trial, name: str) -> Optional[float]:
  """A metric a trial reported (KerasTuner keeps each one's history), or None."""
  metrics = trial.metrics
  return metrics.get_last_value(name) if metrics.exists(name) else None


class CatalogTuner(Tuner):
  """Searches training settings with `tuner_fn` on transformed examples and the catalog."""

  SPEC_CLASS = CatalogTunerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, examples: types.BaseChannel, transform_graph: types.BaseChannel,
               catalog: types.BaseChannel, tuner_fn: str,
               custom_config: Optional[Dict[str, Any]] = None):
    """A CatalogTuner.

    Args:
      examples: Transform's transformed examples; tuner_fn carves its validation from train.
      transform_graph: Transform's graph.
      catalog: ExampleGen's examples, whose catalog split is every candidate title.
      tuner_fn: the dotted name of the user module's tuner_fn.
      custom_config: what tuner_fn reads (names.TRAINING, names.TUNE_TRIALS, ...);
        CATALOG_FILES is added at run time.
    """
    spec = CatalogTunerSpec(
        examples=examples, transform_graph=transform_graph, catalog=catalog, tuner_fn=tuner_fn,
        # tuner_fn trains by epochs and carves its validation split from train.
        train_args=trainer_pb2.TrainArgs(), eval_args=trainer_pb2.EvalArgs(),
        custom_config=json.dumps(custom_config or {}, sort_keys=True),
        best_hyperparameters=types.Channel(type=standard_artifacts.HyperParameters),
        tuner_results=types.Channel(type=standard_artifacts.TunerResults))
    base_component.BaseComponent.__init__(self, spec=spec)
