"""RetrievalEvaluator's executor: evaluates the model the Pusher would ship, and blesses it.

A thin shell over ranking.py, which computes every figure: this reads the artifacts, and
writes `evaluation.json` (docs/evaluation.md) into the ModelEvaluation artifact, and BLESSED
or NOT_BLESSED into the ModelBlessing artifact with the custom properties TFX's own Evaluator
sets (`blessed`, `current_model`, `current_model_id`, `baseline_model`, `baseline_model_id`),
which the Pusher and LatestBlessedModelStrategy read.
"""
import json
import logging
import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from tensorflow_transform.tf_metadata import schema_utils
from tfx import types
from tfx.components.evaluator import constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import artifact_utils, standard_component_specs as keys
from tfx.utils import io_utils, path_utils

from components.evaluator import ranking
from modules.inputs import read_examples
from shared import names

logger = logging.getLogger(f'{names.LOGGER}.evaluator')
MIN_TOP100_KEY = 'min_top100'
MIN_LIFT_KEY = 'min_lift'
MAX_REGRESSION_KEY = 'max_regression'
EVAL_SAMPLE_KEY = 'eval_sample'
EVAL_SAMPLE_SEED_KEY = 'eval_sample_seed'
# The ModelEvaluation's figures for a quick look in ML Metadata: <ranking>_top_<GATE_K>.
QUICK_LOOK = ('model', 'popularity')


def read_splits(examples: types.Artifact, schema: types.Artifact,
                train_features: Iterable[str]) -> Tuple[Dict[str, np.ndarray],
                                                        Dict[str, np.ndarray]]:
  """The raw features of the train and eval splits that the evaluation reads.

  Args:
    examples: ExampleGen's raw examples, with the train and eval splits.
    schema: SchemaGen's schema of them: the features a release has, and their types.
    train_features: the features to read of the train split.

  Returns:
    (train, eval): an array per feature each, the eval split's ranking.eval_features().
  """
  def pattern(split):
    return io_utils.all_files_pattern(artifact_utils.get_split_uri([examples], split))

  spec = schema_utils.schema_as_feature_spec(io_utils.SchemaReader().read(
      io_utils.get_only_uri_in_dir(schema.uri))).feature_spec
  return (read_examples([pattern(names.TRAIN_SPLIT)],
                        {name: spec[name] for name in train_features}),
          read_examples([pattern(names.EVAL_SPLIT)],
                        {name: spec[name] for name in ranking.eval_features(spec)}))


def read_eval_ratings(examples: types.Artifact, schema: types.Artifact) -> ranking.EvalRatings:
  """The eval split's ratings and what each user rated in training.

  Args:
    examples: ExampleGen's raw examples, with the train and eval splits.
    schema: SchemaGen's schema of them: the features a release has, and their types.

  Returns:
    ranking.EvalRatings.from_examples of both splits' features the evaluation reads.
  """
  return ranking.EvalRatings.from_examples(*read_splits(examples, schema,
                                                        ranking.TRAIN_FEATURES))


def _model_entry(model: Optional[types.Artifact]) -> Optional[Dict[str, Any]]:
  """How evaluation.json names a model's artifact."""
  return {'artifact_id': model.id, 'uri': model.uri} if model is not None else None


class Executor(evaluator_executor.Executor):
  """Subclasses TFX's Evaluator executor so that Kubeflow V2's launcher, which rewrites the
  model ids of an Evaluator's blessing for its resolver, treats this blessing the same."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    """Evaluates the model, writes evaluation.json and blesses the model or not.

    Args:
      input_dict: examples (ExampleGen's), schema (SchemaGen's), model (the Trainer's) and
        optionally baseline_model (the latest blessed model), one artifact each.
      output_dict: evaluation (a ModelEvaluation) and blessing (a ModelBlessing).
      exec_properties: the gate's thresholds, MIN_TOP100_KEY, MIN_LIFT_KEY and
        MAX_REGRESSION_KEY (gate.checks), the eval sample's size and seed, EVAL_SAMPLE_KEY
        and EVAL_SAMPLE_SEED_KEY (ranking.eval_sample; absent or 0: every eval rating), and
        the code version (a cache key only).
    """
    model = artifact_utils.get_single_instance(input_dict[keys.MODEL_KEY])
    baseline = (input_dict.get(keys.BASELINE_MODEL_KEY) or [None])[0]
    ratings, sample = ranking.eval_sample(
        read_eval_ratings(artifact_utils.get_single_instance(input_dict[keys.EXAMPLES_KEY]),
                          artifact_utils.get_single_instance(input_dict[keys.SCHEMA_KEY])),
        int(exec_properties.get(EVAL_SAMPLE_KEY) or 0),
        int(exec_properties.get(EVAL_SAMPLE_SEED_KEY) or 0))
    logger.info('Evaluating on %s of the %s eval ratings (--eval-sample, seed %s)',
                f'{sample["ratings"]:,}', f'{sample["of"]:,}', sample['seed'])
    report = ranking.evaluate(
        ratings, ranking.ServedModel(path_utils.serving_model_path(model.uri)),
        ranking.ServedModel(path_utils.serving_model_path(baseline.uri)) if baseline else None)
    sample[f'top_{names.GATE_K}_standard_error'] = ranking.standard_error(
        report['top_k']['model'][names.GATE_KEY], sample['ratings'])
    report['eval_sample'] = sample
    logger.info('%s', ranking.summary(report))

    checks = ranking.gate_checks(
        report, float(exec_properties[MIN_TOP100_KEY]), float(exec_properties[MIN_LIFT_KEY]),
        float(exec_properties[MAX_REGRESSION_KEY]), baseline.id if baseline else None)
    blessed = ranking.blessed(checks)
    logger.info('Gate:\n%s', ranking.gate_summary(checks))
    report = ranking.with_verdict(report, checks, _model_entry(model), _model_entry(baseline))

    evaluation = artifact_utils.get_single_instance(output_dict[keys.EVALUATION_KEY])
    io_utils.write_string_file(os.path.join(evaluation.uri, names.EVALUATION_FILE),
                               json.dumps(report, indent=2))
    for name in QUICK_LOOK:
      evaluation.set_float_custom_property(f'{name}_top_{names.GATE_KEY}',
                                           report['top_k'][name][names.GATE_KEY])
    evaluation.set_int_custom_property(names.BLESSED, int(blessed))
    self._bless(artifact_utils.get_single_instance(output_dict[keys.BLESSING_KEY]),
                model, baseline, blessed)

  @staticmethod
  def _bless(blessing: types.Artifact, model: types.Artifact,
             baseline: Optional[types.Artifact], blessed: bool) -> None:
    """What TFX's Evaluator records, so the Pusher and the baseline resolver read it."""
    blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY,
                                        model.uri)
    blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY,
                                     model.id)
    if baseline is not None:
      blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY,
                                          baseline.uri)
      blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY,
                                       baseline.id)
    name = constants.BLESSED_FILE_NAME if blessed else constants.NOT_BLESSED_FILE_NAME
    io_utils.write_string_file(os.path.join(blessing.uri, name), '')
    blessing.set_int_custom_property(
        constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        constants.BLESSED_VALUE if blessed else constants.NOT_BLESSED_VALUE)
