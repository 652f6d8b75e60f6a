"""RetrievalEvaluator: top-K accuracy over the whole catalog, sliced, and the blessing.

TFX's Evaluator (TFMA) computes per-example metrics; retrieval accuracy needs every
candidate's score for each query, each user's training titles (to remove them), and a
popularity ranking from the training split, so this component computes them itself and
blesses exactly as the stock Evaluator does.
"""
from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts, standard_component_specs as keys
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.evaluator import executor
from shared import names


class RetrievalEvaluatorSpec(ComponentSpec):
  PARAMETERS = {
      executor.MIN_TOP100_KEY: ExecutionParameter(type=float),
      executor.MIN_LIFT_KEY: ExecutionParameter(type=float),
      executor.MAX_REGRESSION_KEY: ExecutionParameter(type=float),
      executor.EVAL_SAMPLE_KEY: ExecutionParameter(type=int, optional=True),
      executor.EVAL_SAMPLE_SEED_KEY: ExecutionParameter(type=int, optional=True),
      # A fingerprint of the evaluation code: a change re-runs the evaluation (TFX caching).
      names.CODE_VERSION: ExecutionParameter(type=str, optional=True),
  }
  INPUTS = {
      keys.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
      # SchemaGen's: the types of the features the evaluation slices by.
      keys.SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema),
      keys.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
      keys.BASELINE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
  }
  OUTPUTS = {
      keys.EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
      keys.BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
  }


class RetrievalEvaluator(base_component.BaseComponent):
  """Evaluates `model` on the raw eval split of `examples` (typed by `schema`) and blesses it
  if it passes (ranking.py computes the figures, gate.py decides)."""

  SPEC_CLASS = RetrievalEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, schema: types.BaseChannel,
               model: types.BaseChannel,
               min_top100: float, min_lift: float, max_regression: float,
               baseline_model: Optional[types.BaseChannel] = None,
               eval_sample: int = 0, eval_sample_seed: int = 0,
               code_version: Optional[str] = None):
    """A RetrievalEvaluator.

    Args:
      examples: ExampleGen's raw examples (the train and eval splits).
      schema: SchemaGen's schema of them, which types the features read.
      model: the Trainer's model; its serving SavedModel is what is evaluated.
      min_top100: the absolute floor of top-100 accuracy (--min-top100; 0: none).
      min_lift: how many times the most-popular list's top-100 the model must reach.
      max_regression: how far below the baseline's top-100 the model may be.
      baseline_model: the latest blessed model, evaluated on the same split; None: none yet.
      eval_sample: how many eval ratings, a seeded sample, the model, the baseline and the
        popularity list are ranked on (0: all).
      eval_sample_seed: the sample's seed.
      code_version: a fingerprint of the evaluation's code, so that an edit re-runs it.
    """
    super().__init__(spec=RetrievalEvaluatorSpec(
        examples=examples, schema=schema, model=model, baseline_model=baseline_model,
        min_top100=float(min_top100), min_lift=float(min_lift),
        max_regression=float(max_regression),
        eval_sample=int(eval_sample), eval_sample_seed=int(eval_sample_seed),
        code_version=code_version,
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing)))
