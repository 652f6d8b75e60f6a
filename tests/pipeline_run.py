"""Running the real pipeline from its entry point on synthetic data, and reading what it left."""
import contextlib
import dataclasses
import glob
import io
import json
import os
from typing import Dict, List

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import runner_local
from pipeline import metadata
from pipeline import configs


@dataclasses.dataclass
class Run:
  exit_code: int
  stdout: str
  stderr: str
  config: configs.LocalConfig
  run_number: int  # this run's position among the pipeline's runs in ML Metadata

  def outputs(self) -> Dict[str, metadata.Output]:
    """This run's outputs, by 'Component.key'."""
    name = self.config.run.pipeline_name
    store = metadata.connect(self.config.local.metadata_path)
    run = metadata.runs(store, name)[self.run_number]
    return {f'{o.component}.{o.key}': o for o in metadata.run_outputs(store, name, run)}


def run_pipeline(data_dir: str, output_dir: str, *flags: str) -> Run:
  """Runs runner_local.main as a user would (Beam's in-memory DirectRunner, the default) and
  captures its output."""
  argv = ['--data-dir', data_dir, '--output-dir', output_dir, *flags]
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    exit_code = runner_local.main(argv)
  config = configs.parse_args(argv)
  number = -1
  if os.path.exists(config.local.metadata_path):
    number = len(metadata.runs(metadata.connect(config.local.metadata_path),
                               config.run.pipeline_name)) - 1
  return Run(exit_code, out.getvalue(), err.getvalue(), config, number)


def read_examples(examples_uri: str, split: str) -> List[tf.train.Example]:
  files = sorted(glob.glob(os.path.join(examples_uri, f'Split-{split}', '*.gz')))
  assert files, f'no examples in {examples_uri} split {split}'
  return [tf.train.Example.FromString(record.numpy())
          for record in tf.data.TFRecordDataset(files, compression_type='GZIP')]


def feature_values(example: tf.train.Example) -> Dict[str, object]:
  """An example as {name: value}, a single value unwrapped, bytes decoded."""
  values = {}
  for name, feature in example.features.feature.items():
    kind = feature.WhichOneof('kind')
    items = list(getattr(feature, kind).value)
    if kind == 'bytes_list':
      items = [item.decode() for item in items]
    values[name] = items if name == 'movie_genres' else items[0]
  return values


def inspect_at(output_dir: str, *args: str):
  """(exit code, stdout, stderr) of `python -m inspector --output-dir OUTPUT_DIR ARGS`."""
  from inspector import __main__ as inspector_cli
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = inspector_cli.main(['--output-dir', output_dir, *args])
  return code, out.getvalue(), err.getvalue()


def inspect_json_at(output_dir: str, *args: str):
  """The inspector's --json answer, which must have succeeded."""
  code, out, err = inspect_at(output_dir, *args, '--json')
  assert code == 0, err
  return json.loads(out)


def signature_names(model_uri: str) -> set:
  """The SignatureDefs of a model's Format-Serving, as TF Serving reads them."""
  saved = saved_model_pb2.SavedModel()
  with open(os.path.join(model_uri, 'Format-Serving', 'saved_model.pb'), 'rb') as file:
    saved.ParseFromString(file.read())
  return set(saved.meta_graphs[0].signature_def) - {'__saved_model_init_op'}
