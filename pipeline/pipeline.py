"""create_pipeline: the one definition of the pipeline, shared by every runner.

ExampleGen over MovieLens -> StatisticsGen -> SchemaGen -> ExampleValidator -> ValidationGate
  -> Transform -> [Tuner, with --tune] -> Trainer (with the catalog as the candidates)
  -> RetrievalEvaluator (against the latest blessed model, found by a Resolver)
  -> ServingPusher

With --refresh-catalog, in place of training (docs/serving.md, "New titles without
retraining"):

ExampleGen -> StatisticsGen -> SchemaGen; the latest blessed model (a Resolver)
  -> CatalogRefresh (that model over ExampleGen's catalog) -> RetrievalEvaluator -> ServingPusher
"""
from typing import List, Optional, Sequence

from ml_metadata.proto import metadata_store_pb2
import tensorflow_data_validation as tfdv
from tfx import v1 as tfx

from components.evaluator.component import RetrievalEvaluator
from components.example_gen import MovieLensExampleGen
from components.pusher import ServingPusher
from components.catalog_refresh import CatalogRefresh
from components.catalog_trainer import CatalogTrainer
from components.catalog_tuner import CatalogTuner
from components.validation_gate import ValidationGate
from shared import names
from pipeline.configs import PipelineConfig
from pipeline.fingerprint import source_fingerprint


def create_pipeline(
    config: PipelineConfig, pipeline_root: str, beam_args: Sequence[str],
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
) -> tfx.dsl.Pipeline:
  """The pipeline of a configuration; each component receives its section of it.

  Args:
    config: the sections (pipeline/configs.py), their paths resolved by the runner.
    pipeline_root: the root of the artifacts (the runner's).
    beam_args: Beam's pipeline arguments for the Beam-running components (the runner's).
    metadata_connection_config: ML Metadata's connection, for a runner that keeps it itself
      (LocalDagRunner); None for orchestrators that bring their own (Kubeflow).

  Returns:
    The TFX pipeline; runners add how and where it runs: the training pipeline, or with
    config.serving.refresh_catalog the catalog refresh.

  Raises:
    ValueError: a catalog refresh without the latest blessed model (--no-compare-with-blessed).
  """
  if config.serving.refresh_catalog:
    components = _refresh_components(config)
  else:
    components = _training_components(config)
  return tfx.dsl.Pipeline(
      pipeline_name=config.run.pipeline_name,
      pipeline_root=pipeline_root,
      components=components,
      enable_cache=config.run.cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(beam_args))


def _example_gen(config: PipelineConfig) -> MovieLensExampleGen:
  data = config.data
  return MovieLensExampleGen(
      data_dir=data.data_dir, eval_percent=data.eval_percent, layout=data.layout,
      max_bad_rows=data.max_bad_rows, holdout_users=data.holdout_users,
      code_version=source_fingerprint('components.example_gen')).with_id(names.EXAMPLE_GEN)


def _statistics_and_schema(config: PipelineConfig, example_gen: MovieLensExampleGen):
  """StatisticsGen (on a sample of the examples for a large release) and SchemaGen of
  ExampleGen's examples."""
  sample_rate = config.statistics_sample_rate
  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs['examples'],
      stats_options=tfdv.StatsOptions(sample_rate=sample_rate) if sample_rate < 1 else None
  ).with_id(names.STATISTICS_GEN)
  # The schema is inferred from train alone, so that eval is checked against it.
  schema_gen = tfx.components.SchemaGen(
      statistics=statistics_gen.outputs['statistics'], infer_feature_shape=True,
      exclude_splits=['eval']).with_id(names.SCHEMA_GEN)
  return statistics_gen, schema_gen


def _latest_blessed_model() -> tfx.dsl.Resolver:
  return tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
      model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
      model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
  ).with_id(names.BLESSED_MODEL_RESOLVER)


def _evaluate_and_push(config: PipelineConfig, example_gen: MovieLensExampleGen,
                       schema_gen, model, latest_blessed_model: Optional[tfx.dsl.Resolver]):
  """The RetrievalEvaluator of a model (against the latest blessed one, if given) and the
  ServingPusher of it."""
  gate = config.gate
  evaluator = RetrievalEvaluator(
      examples=example_gen.outputs['examples'], schema=schema_gen.outputs['schema'],
      model=model,
      baseline_model=latest_blessed_model.outputs['model'] if latest_blessed_model else None,
      min_top100=gate.min_top100, min_lift=gate.min_lift, max_regression=gate.max_regression,
      eval_sample=gate.eval_sample, eval_sample_seed=gate.eval_sample_seed,
      code_version=source_fingerprint('components.evaluator.component')).with_id(names.EVALUATOR)
  pusher = ServingPusher(model=model, model_blessing=evaluator.outputs['blessing'],
                         serving_dir=config.serving.serving_dir,
                         code_version=source_fingerprint('components.pusher')
                         ).with_id(names.PUSHER)
  return evaluator, pusher


def _refresh_components(config: PipelineConfig) -> List:
  """The catalog refresh: the latest blessed model over ExampleGen's catalog, evaluated and
  pushed as a model the Trainer made would be."""
  if not config.gate.compare_with_blessed:
    raise ValueError('--refresh-catalog serves the latest blessed model, which a Resolver '
                     'finds: it needs --compare-with-blessed')
  example_gen = _example_gen(config)
  statistics_gen, schema_gen = _statistics_and_schema(config, example_gen)
  latest_blessed_model = _latest_blessed_model()
  refresh = CatalogRefresh(
      blessed_model=latest_blessed_model.outputs['model'],
      catalog=example_gen.outputs['catalog'], serving_k=config.serving.serving_k,
      code_version=source_fingerprint('modules.catalog_refresh', 'components.catalog_refresh')
  ).with_id(names.CATALOG_REFRESH)
  evaluator, pusher = _evaluate_and_push(config, example_gen, schema_gen,
                                         refresh.outputs['model'], latest_blessed_model)
  return [example_gen, statistics_gen, schema_gen, latest_blessed_model, refresh, evaluator,
          pusher]


def _training_components(config: PipelineConfig) -> List:
  """ExampleGen to the Pusher, training a model (the module's docstring)."""
  example_gen = _example_gen(config)
  statistics_gen, schema_gen = _statistics_and_schema(config, example_gen)
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'], schema=schema_gen.outputs['schema']
  ).with_id(names.EXAMPLE_VALIDATOR)
  validation_gate = ValidationGate(
      anomalies=example_validator.outputs['anomalies'],
      code_version=source_fingerprint('components.validation_gate')).with_id(names.VALIDATION_GATE)
  transform = tfx.components.Transform(
      examples=example_gen.outputs['examples'], schema=schema_gen.outputs['schema'],
      preprocessing_fn='modules.preprocessing.preprocessing_fn',
      # StatisticsGen already describes the raw data and nothing reads statistics of the
      # transformed features: computing both would cost Transform about a third of its time.
      disable_statistics=True,
      custom_config={**config.transform.custom_config(),
                     names.CODE_VERSION: source_fingerprint('modules.preprocessing')}
  ).with_id(names.TRANSFORM)
  transform.add_upstream_node(validation_gate)  # no training on data with anomalies
  # What the Tuner and the Trainer both read: the transformed examples, and the catalog.
  training_inputs = dict(examples=transform.outputs['transformed_examples'],
                         transform_graph=transform.outputs['transform_graph'],
                         catalog=example_gen.outputs['catalog'])
  tuner = None
  if config.tuning.tune:
    tuner = CatalogTuner(
        **training_inputs, tuner_fn='modules.tuner.tuner_fn',
        custom_config={names.TRAINING: config.training.to_json_dict(),
                       **config.tuning.custom_config(),
                       names.CODE_VERSION: source_fingerprint('modules.tuner',
                                                              'components.catalog_tuner')}
    ).with_id(names.TUNER)
  trainer = CatalogTrainer(
      **training_inputs, run_fn='modules.trainer.run_fn',
      custom_config={names.TRAINING: config.training.to_json_dict(),
                     names.SERVING_K: config.serving.serving_k,
                     names.CODE_VERSION: source_fingerprint('modules.trainer',
                                                            'components.catalog_trainer')},
      hyperparameters=tuner.outputs['best_hyperparameters'] if tuner else None
  ).with_id(names.TRAINER)
  latest_blessed_model = _latest_blessed_model() if config.gate.compare_with_blessed else None
  evaluator, pusher = _evaluate_and_push(config, example_gen, schema_gen,
                                         trainer.outputs['model'], latest_blessed_model)
  return [c for c in (example_gen, statistics_gen, schema_gen, example_validator,
                      validation_gate, transform, tuner, trainer, latest_blessed_model,
                      evaluator, pusher) if c is not None]
