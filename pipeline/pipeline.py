"""create_pipeline: the one definition of the pipeline, shared by every runner.

ExampleGen over MovieLens -> StatisticsGen -> SchemaGen -> ExampleValidator -> ValidationGate
  -> Transform -> Trainer (with the catalog as the candidates)
"""
import hashlib
import os
from typing import Optional

from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

import modules
from components.example_gen import MovieLensExampleGen
from components.trainer import CatalogTrainer
from components.validation_gate import ValidationGate
from pipeline.configs import PipelineConfig


def modules_fingerprint() -> str:
  """A hash of the user modules' source.

  TFX's cache keys on a component's inputs and settings; with module paths (not module
  files) that leaves out the code itself, so Transform and the Trainer carry this in
  their custom_config: editing modules/ reruns them instead of reusing stale results.
  """
  digest = hashlib.sha256()
  directory = os.path.dirname(modules.__file__)
  for name in sorted(os.listdir(directory)):
    if name.endswith('.py'):
      with open(os.path.join(directory, name), 'rb') as file:
        digest.update(name.encode() + b'\0' + file.read())
  return digest.hexdigest()[:16]


def create_pipeline(
    config: PipelineConfig,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
) -> tfx.dsl.Pipeline:
  """The pipeline for `config`; runners add how and where it runs."""
  code_version = modules_fingerprint()
  example_gen = MovieLensExampleGen(
      data_dir=config.data_dir, eval_percent=config.eval_percent, layout=config.layout,
      max_bad_rows=config.max_bad_rows)
  statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs['examples'])
  # The schema is inferred from train alone, so that eval is checked against it.
  schema_gen = tfx.components.SchemaGen(
      statistics=statistics_gen.outputs['statistics'], infer_feature_shape=True,
      exclude_splits=['eval'])
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'], schema=schema_gen.outputs['schema'])
  validation_gate = ValidationGate(anomalies=example_validator.outputs['anomalies'])
  transform = tfx.components.Transform(
      examples=example_gen.outputs['examples'], schema=schema_gen.outputs['schema'],
      preprocessing_fn='modules.preprocessing.preprocessing_fn',
      custom_config={'timestamp_boundaries': config.timestamp_boundaries,
                     'max_title_tokens': config.max_title_tokens,
                     'modules_fingerprint': code_version})
  transform.add_upstream_node(validation_gate)  # no training on data with anomalies
  trainer = CatalogTrainer(
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      catalog=example_gen.outputs['catalog'], run_fn='modules.trainer.run_fn',
      custom_config={'training': config.training.to_json_dict(),
                     'modules_fingerprint': code_version})

  return tfx.dsl.Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=config.pipeline_root,
      components=[example_gen, statistics_gen, schema_gen, example_validator, validation_gate,
                  transform, trainer],
      enable_cache=config.cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=config.beam_args)
