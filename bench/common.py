"""What the benchmarks share: the latest pipeline run's Transform and catalog artifacts."""
import os
import sys
from typing import Dict, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from shared import env  # noqa: E402

env.use_legacy_keras()  # before anything imports TensorFlow
from pipeline import metadata  # noqa: E402
from pipeline import configs  # noqa: E402
from shared import names  # noqa: E402


def latest_training_inputs(output_dir: str = configs.DEFAULT_OUTPUT_DIR,
                           pipeline_name: str = names.PIPELINE_NAME, input_mode: str = 'memory'):
  """(tft_output, vocabularies, train, eval) from the newest run that has a Transform output;
  train in memory, or TrainFiles to stream with input_mode='stream'.

  Run `make run` (or runner_local.py) first.
  """
  import tensorflow_transform as tft
  from modules import hparams, inputs
  outputs = latest_outputs(output_dir, pipeline_name, 'Transform.transform_graph')
  tft_output = tft.TFTransformOutput(outputs['Transform.transform_graph'])
  examples = outputs['Transform.transformed_examples']
  catalog = outputs['MovieLensExampleGen.catalog']
  return (tft_output,) + inputs.load_training_inputs(
      tft_output, [os.path.join(examples, 'Split-train', '*')],
      [os.path.join(examples, 'Split-eval', '*')], os.path.join(catalog, 'Split-catalog', '*'),
      hparams.preset(hparams.DEFAULT_PRESET, input_mode=input_mode))


def latest_outputs(output_dir: str, pipeline_name: str, needed: str):
  config = configs.Local(output_dir=output_dir)
  store = metadata.connect(config.metadata_path)
  for run in reversed(metadata.runs(store, pipeline_name)):
    outputs = {f'{o.component}.{o.key}': o.uri
               for o in metadata.run_outputs(store, pipeline_name, run)}
    if needed in outputs:
      return outputs
  raise SystemExit(f'no run with {needed} in {config.metadata_path}: run `make run` first')


def latest_raw_examples(output_dir: str = configs.DEFAULT_OUTPUT_DIR,
                        pipeline_name: str = names.PIPELINE_NAME,
                        of_run_with: str = 'MovieLensExampleGen.examples',
                        extra_spec: Optional[Dict] = None):
  """(train, eval, catalog titles) of ExampleGen's output in the newest run that has
  `of_run_with`: raw user_id, timestamp and movie_title arrays, as the tutorial's code
  reads them, and the features of `extra_spec` (a tf.io feature spec)."""
  import tensorflow as tf
  from modules import inputs
  outputs = latest_outputs(output_dir, pipeline_name, of_run_with)
  spec = {'user_id': tf.io.FixedLenFeature([], tf.string),
          'timestamp': tf.io.FixedLenFeature([], tf.int64),
          'movie_title': tf.io.FixedLenFeature([], tf.string),
          **(extra_spec or {})}

  def read(split):
    return inputs.read_examples(
        [os.path.join(outputs['MovieLensExampleGen.examples'], f'Split-{split}', '*')], spec)

  titles, _ = inputs.read_catalog_titles_and_genres(
      os.path.join(outputs['MovieLensExampleGen.catalog'], 'Split-catalog', '*'))
  return read('train'), read('eval'), [title.encode() for title in titles]
