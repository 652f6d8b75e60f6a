"""MovieLensExampleGen's executor: checks the input, runs the ingestion, accounts for bad rows."""
import heapq
import json
import logging
import os
from typing import Any, Dict, List

import apache_beam as beam
from tfx import types
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import proto_utils

from components.example_gen import ingest
from data import layouts

logger = logging.getLogger('movielens_tfx')

EXAMPLES_KEY = 'examples'
CATALOG_KEY = 'catalog'
CATALOG_SPLIT = 'catalog'
LAYOUT_KEY = 'layout'
MAX_BAD_ROWS_KEY = 'max_bad_rows'
# Where, inside the examples artifact, the rows that could not be used are listed.
BAD_ROWS_FILE = 'bad_rows.jsonl'
COUNTS_FILE = 'counts.json'
SOURCE_MANIFEST = 'SOURCE.json'  # written by `python -m data.fetch`
SHOWN_BAD_ROWS = 5


class IngestionError(ValueError):
  """The input cannot be ingested as it is; the message names the file, line and fix."""


def check_input(data_dir: str, layout_name: str) -> layouts.Layout:
  """The layout of data_dir, after checking that each of its files exists and is not empty."""
  if not fileio.isdir(data_dir):
    raise IngestionError(f'the data directory {data_dir} does not exist. Fetch a release '
                         'with `python -m data.fetch --release 100k` (or 1m, 20m, 25m, '
                         'latest-small; `make data` fetches 100k) or pass --data-dir')
  names = [os.path.basename(path.rstrip('/')) for path in fileio.listdir(data_dir)]
  try:
    layout = layouts.detect_layout(data_dir, names, layout_name)
  except layouts.LayoutError as error:
    raise IngestionError(str(error)) from None
  for table in layout.tables().values():
    path = os.path.join(data_dir, table.file_name)
    if fileio.stat(path).length == 0:
      raise IngestionError(f'{path} is empty; fetch the data again (make data)')
  return layout


def _read_source(data_dir: str) -> str:
  path = os.path.join(data_dir, SOURCE_MANIFEST)
  if not fileio.exists(path):
    return data_dir
  with fileio.open(path) as file:
    return json.load(file).get('source', data_dir)


def _bad_rows_summary(path: str) -> List[Dict[str, Any]]:
  """The first bad rows by file and line, without holding them all in memory."""
  if not fileio.exists(path):
    return []
  with fileio.open(path) as lines:
    rows = (json.loads(line) for line in lines if line.strip())
    return heapq.nsmallest(SHOWN_BAD_ROWS, rows, key=lambda row: (row['file'], row['line']))


def describe_bad_rows(rows: List[Dict[str, Any]], count: int, listing: str) -> str:
  shown = '\n'.join(f'  {row["file"]}, line {row["line"]}: {row["reason"]}' for row in rows)
  more = f'\n  ... and {count - len(rows)} more' if count > len(rows) else ''
  return f'{shown}{more}\n  (all of them are listed in {listing})'


class Executor(base_beam_executor.BaseBeamExecutor):
  """Writes Examples split by the output config, plus the movie catalog as its own Examples."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    data_dir = exec_properties['input_base']
    layout = check_input(data_dir, exec_properties[LAYOUT_KEY])
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties['output_config'], output_config)
    splits = [(s.name, s.hash_buckets) for s in output_config.split_config.splits]
    file_format = exec_properties['output_file_format']

    examples = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
    catalog = artifact_utils.get_single_instance(output_dict[CATALOG_KEY])
    bad_rows_path = os.path.join(examples.uri, BAD_ROWS_FILE)
    counts_path = os.path.join(examples.uri, COUNTS_FILE)
    examples.split_names = artifact_utils.encode_split_names([name for name, _ in splits])
    catalog.split_names = artifact_utils.encode_split_names([CATALOG_SPLIT])
    source = _read_source(data_dir)
    logger.info('Reading %s from %s', layout.description, source)

    with self._make_beam_pipeline() as pipeline:
      outputs = pipeline | 'Ingest' >> ingest.IngestMovieLens(data_dir, layout, splits)
      for name, _ in splits:
        ingest.write_examples(outputs[name], artifact_utils.get_split_uri([examples], name),
                              name)
      ingest.write_examples(
          outputs['catalog'] | 'SerializeCatalog' >> beam.Map(lambda e: [e.SerializeToString()]),
          artifact_utils.get_split_uri([catalog], CATALOG_SPLIT), CATALOG_SPLIT)
      ingest.write_json_lines(outputs['bad_rows'], bad_rows_path, 'bad_rows')
      ingest.write_json_lines(outputs['counts'], counts_path, 'counts')

    with fileio.open(counts_path) as file:
      counts = json.load(file)
    num_bad, allowed = counts['bad_rows'], exec_properties[MAX_BAD_ROWS_KEY]
    if num_bad > allowed:
      raise IngestionError(
          f'{num_bad:,} rows of {data_dir} cannot be used (at most {allowed:,} may be '
          f'skipped; raise --max-bad-rows to skip them):\n'
          + describe_bad_rows(_bad_rows_summary(bad_rows_path), num_bad, bad_rows_path))
    if num_bad:
      logger.warning('Skipped %d bad rows (allowed: %d):\n%s', num_bad, allowed,
                     describe_bad_rows(_bad_rows_summary(bad_rows_path), num_bad,
                                       bad_rows_path))

    for artifact in (examples, catalog):
      examples_utils.set_payload_format(artifact, exec_properties['output_data_format'])
      examples_utils.set_file_format(artifact, write_split.to_file_format_str(file_format))
      artifact.set_string_custom_property('data_source', source)
      artifact.set_string_custom_property('data_layout', layout.name)
    for name, _ in splits:
      examples.set_int_custom_property(f'num_examples_{name}', counts[f'examples_{name}'])
    examples.set_int_custom_property('num_bad_rows_skipped', num_bad)
    examples.set_int_custom_property('num_users', counts['users'])
    catalog.set_int_custom_property('num_movies', counts['movies'])
    logger.info('%s ratings -> %s; catalog of %s movies; %s users; %d bad rows skipped',
                f'{sum(counts[f"examples_{n}"] for n, _ in splits):,}',
                ', '.join(f'{n} {counts[f"examples_{n}"]:,}' for n, _ in splits),
                f'{counts["movies"]:,}', f'{counts["users"]:,}', num_bad)
