"""The pipeline compiles for Kubeflow Pipelines V2 (no notebook-only tricks)."""
import json

from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

from pipeline import configs
from pipeline.pipeline import create_pipeline

IMAGE = 'example.com/movielens-tfx:test'


def test_the_pipeline_compiles_for_kubeflow_v2(tmp_path):
  config = configs.PipelineConfig(pipeline_root='gs://bucket/root',
                                  data_dir='gs://bucket/ml-100k',
                                  serving_dir='gs://bucket/serving')
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image=IMAGE),
      output_dir=str(tmp_path), output_filename='pipeline.json')
  runner.run(create_pipeline(config), write_out=True)
  spec = json.loads((tmp_path / 'pipeline.json').read_text())['pipelineSpec']
  tasks = spec['root']['dag']['tasks']
  assert set(tasks) == {'MovieLensExampleGen', 'StatisticsGen', 'SchemaGen',
                        'ExampleValidator', 'ValidationGate', 'Transform', 'CatalogTrainer',
                        'latest_blessed_model_resolver-model-blessing-resolver',
                        'latest_blessed_model_resolver-model-resolver', 'RetrievalEvaluator',
                        'ServingPusher'}
  # Kubeflow V2 resolves the latest blessed model in two queries: blessing, then its model.
  evaluator_inputs = tasks['RetrievalEvaluator']['inputs']['artifacts']
  assert evaluator_inputs['baseline_model']['taskOutputArtifact']['producerTask'] == (
      'latest_blessed_model_resolver-model-resolver')
  assert tasks['ServingPusher']['inputs']['artifacts']['model_blessing'][
      'taskOutputArtifact'] == {'producerTask': 'RetrievalEvaluator',
                                'outputArtifactKey': 'blessing'}
  assert tasks['ValidationGate']['dependentTasks'] == ['ExampleValidator']
  assert set(tasks['Transform']['dependentTasks']) == {'MovieLensExampleGen', 'SchemaGen',
                                                       'ValidationGate'}
  trainer_inputs = tasks['CatalogTrainer']['inputs']['artifacts']
  assert trainer_inputs['catalog']['taskOutputArtifact'] == {
      'producerTask': 'MovieLensExampleGen', 'outputArtifactKey': 'catalog'}
  spec_text = json.dumps(spec)
  assert 'modules.preprocessing.preprocessing_fn' in spec_text
  assert 'modules.trainer.run_fn' in spec_text
  example_gen = spec['components'][tasks['MovieLensExampleGen']['componentRef']['name']]
  assert set(example_gen['outputDefinitions']['artifacts']) == {'examples', 'catalog'}
  executor = spec['deploymentSpec']['executors'][example_gen['executorLabel']]['container']
  assert executor['image'] == IMAGE
  assert 'preCacheCheck' in executor['lifecycle']  # TFX's ExampleGen driver fingerprints input
  assert str(configs.REPO_ROOT) not in spec_text  # no path of this machine leaks
