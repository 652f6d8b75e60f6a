"""MovieLensExampleGen: a FileBasedExampleGen whose executor reads MovieLens files.

Being a FileBasedExampleGen keeps what TFX gives file inputs: the driver fingerprints the
files under `input_base` (so a cached run is reused only while the data is unchanged) and
the Kubeflow V2 compiler runs that driver before the executor.
"""
from typing import Optional

from tfx import types
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.example_gen import executor
from shared import names


class MovieLensExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
  PARAMETERS = {
      **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
      executor.LAYOUT_KEY: ExecutionParameter(type=str),
      executor.MAX_BAD_ROWS_KEY: ExecutionParameter(type=int),
      executor.HOLDOUT_USERS_KEY: ExecutionParameter(type=int),
      # A fingerprint of the reading code: a change re-reads the data (TFX caching).
      names.CODE_VERSION: ExecutionParameter(type=str, optional=True),
  }
  OUTPUTS = {
      **standard_component_specs.FileBasedExampleGenSpec.OUTPUTS,
      executor.CATALOG_KEY: ChannelParameter(type=standard_artifacts.Examples),
  }


class MovieLensExampleGen(FileBasedExampleGen):
  """Rating examples (splits `train` and `eval`) and the movie catalog (split `catalog`).

  Outputs:
    examples: every rating joined with its movie's and user's features, under TFDS' names.
    catalog: one example per movie of the catalog, rated or not (movie_id, movie_title,
      movie_genres): the model's candidates.
  """

  SPEC_CLASS = MovieLensExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, data_dir: str, eval_percent: int, layout: str, max_bad_rows: int,
               holdout_users: int, code_version: Optional[str] = None):
    """
    Args:
      data_dir: directory of one MovieLens release, in any layout of `data.layouts`.
      eval_percent: share of ratings in the `eval` split, by a stable hash of each rating.
      layout: a layout name of `data.layouts.LAYOUTS`, or 'auto' to detect it.
      max_bad_rows: how many unusable rows may be skipped (and reported) before the
        component fails; 0 fails on the first.
      holdout_users: percentage of users (by a stable hash of the id) held out of training:
        all their ratings go to `eval`, for the Evaluator's cold-start figures.
      code_version: a fingerprint of the reading code, so that editing it re-reads the data.
    """
    if not 0 < eval_percent < 100:
      raise ValueError(f'eval_percent must be between 1 and 99, not {eval_percent}')
    if not 0 <= holdout_users < 100:
      raise ValueError(f'holdout_users must be between 0 and 99, not {holdout_users}')
    if max_bad_rows < 0:
      raise ValueError(f'max_bad_rows must be 0 or more, not {max_bad_rows}')
    split = example_gen_pb2.SplitConfig.Split
    spec = MovieLensExampleGenSpec(
        input_base=data_dir,
        # One input "split" of every file: the driver fingerprints them all.
        input_config=example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name='all', pattern='*')]),
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            split(name=names.TRAIN_SPLIT, hash_buckets=100 - eval_percent),
            split(name=names.EVAL_SPLIT, hash_buckets=eval_percent)])),
        output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
        output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        layout=layout,
        max_bad_rows=max_bad_rows,
        holdout_users=holdout_users,
        code_version=code_version,
        examples=types.Channel(type=standard_artifacts.Examples),
        catalog=types.Channel(type=standard_artifacts.Examples))
    base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
