"""The real pipeline reading samples: StatisticsGen on TFDV's sample of the examples
(--statistics-sample-mb), the Evaluator on a seeded sample of the eval split (--eval-sample)."""
import glob
import json
import math
import os

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.evaluator import executor, ranking
from pipeline import configs
from shared import names
from tests import synthetic
from tests.conftest import QUICK_TRAINING
from tests.pipeline_run import run_pipeline

EVAL_SAMPLE = 40
SEED = 5


@pytest.fixture(scope='module')
def release_dir(tmp_path_factory):
  return synthetic.write_grouplens_100k(synthetic.make_clustered_release(seed=2),
                                        str(tmp_path_factory.mktemp('sampling') / 'ml-100k'))


def statistics_budget_mb(data_dir: str, rate: float) -> str:
  """The --statistics-sample-mb that reads `rate` of this release's examples."""
  return str(configs.data_bytes(data_dir) * rate / 2**20)


@pytest.fixture(scope='module')
def run(release_dir, tmp_path_factory):
  result = run_pipeline(release_dir, str(tmp_path_factory.mktemp('sampled')), *QUICK_TRAINING,
                        '--epochs', '1', '--statistics-sample-mb',
                        statistics_budget_mb(release_dir, 0.5), '--eval-sample',
                        str(EVAL_SAMPLE), '--eval-sample-seed', str(SEED))
  assert result.exit_code == 0, result.stderr
  return result


def _artifact(kind, uri, split_names=None):
  artifact = kind()
  artifact.uri = uri
  if split_names:
    artifact.split_names = split_names
  return artifact


def test_statisticsgen_describes_a_sample_and_the_schema_and_checks_still_pass(run):
  assert 'StatisticsGen reads a sample of 50.0% of the examples' in run.stdout
  outputs = run.outputs()
  examples = outputs['MovieLensExampleGen.examples'].uri
  described = tfdv.load_stats_binary(os.path.join(
      outputs['StatisticsGen.statistics'].uri, 'Split-train', 'FeatureStats.pb')
  ).datasets[0].num_examples
  train = sum(1 for _ in tf.data.TFRecordDataset(
      glob.glob(os.path.join(examples, 'Split-train', '*')), compression_type='GZIP'))
  # TFDV keeps or drops whole record batches (unseeded): how many it keeps varies.
  assert 0 < described < train, (described, train)
  # The schema still has every feature ExampleGen writes, and the run got past the gate.
  schema = tfdv.load_schema_text(os.path.join(outputs['SchemaGen.schema'].uri, 'schema.pbtxt'))
  assert {f.name for f in schema.feature} >= {'user_id', 'movie_title', 'timestamp',
                                               'user_occupation_text'}
  assert 'RetrievalEvaluator.evaluation' in outputs


def test_the_evaluator_ranks_the_seeded_sample_and_records_it(run):
  outputs = run.outputs()
  with open(os.path.join(outputs['RetrievalEvaluator.evaluation'].uri,
                         names.EVALUATION_FILE)) as file:
    report = json.load(file)
  sample = report['eval_sample']
  assert report['num_eval_ratings'] == sample['ratings'] == EVAL_SAMPLE
  assert sample['seed'] == SEED and sample['of'] > EVAL_SAMPLE
  top = report['top_k']['model'][names.GATE_KEY]
  assert sample[f'top_{names.GATE_K}_standard_error'] == pytest.approx(
      math.sqrt(top * (1 - top) / EVAL_SAMPLE))
  # The same seed draws the same ratings again: ranking them reproduces the report.
  examples = _artifact(standard_artifacts.Examples, outputs['MovieLensExampleGen.examples'].uri,
                       json.dumps([names.TRAIN_SPLIT, names.EVAL_SPLIT]))
  schema = _artifact(standard_artifacts.Schema, outputs['SchemaGen.schema'].uri)
  ratings, again = ranking.eval_sample(executor.read_eval_ratings(examples, schema),
                                       EVAL_SAMPLE, SEED)
  assert again == {key: value for key, value in sample.items() if key in again}
  model = ranking.ServedModel(path_utils.serving_model_path(
      outputs['CatalogTrainer.model'].uri))
  assert ranking.evaluate(ratings, model)['top_k'] == {
      name: figures for name, figures in report['top_k'].items() if name != 'baseline_model'}
  assert 'Evaluating on 40 of the' in open(run.config.local.logs_dir + '/' + sorted(
      os.listdir(run.config.local.logs_dir))[-1]).read()

