"""MovieLensExampleGen's executor: checks the input, runs the ingestion, accounts for bad rows."""
import heapq
import json
import logging
import os
from typing import Any, Dict, List

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
from shared import names

logger = logging.getLogger(f'{names.LOGGER}.example_gen')

EXAMPLES_KEY = 'examples'
CATALOG_KEY = 'catalog'
LAYOUT_KEY = 'layout'
MAX_BAD_ROWS_KEY = 'max_bad_rows'
HOLDOUT_USERS_KEY = 'holdout_users'
# Where, inside the examples artifact, the rows that could not be used are listed.
BAD_ROWS_FILE = 'bad_rows.jsonl'
COUNTS_FILE = 'counts.json'
SHOWN_BAD_ROWS = 5


class IngestionError(ValueError):
  """The input cannot be ingested as it is; the message names the file, line and fix."""


def check_input(data_dir: str, layout_name: str) -> layouts.Layout:
  """The layout of data_dir, after checking that each of its files exists and is not empty.

  Args:
    data_dir: the release's directory.
    layout_name: a layout of `data.layouts.LAYOUTS`, or 'auto' to detect it.

  Returns:
    The layout.

  Raises:
    IngestionError: naming what is missing or empty, and how to get it back.
  """
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
      raise IngestionError(f'{path} is empty; {_how_to_restore(data_dir)}')
  return layout


def _how_to_restore(data_dir: str) -> str:
  """What gets a directory's files back: fetching again if data.fetch wrote it."""
  path = os.path.join(data_dir, names.SOURCE_MANIFEST)
  if fileio.exists(path):
    with fileio.open(path) as file:
      manifest = json.load(file)
    if 'release' in manifest:
      return (f'it was fetched from {manifest["source"]}: fetch it again with `python -m '
              f'data.fetch --release {manifest["release"]} --force`')
    return f'it came from {manifest.get("source", "elsewhere")}: copy or write it again'
  return 'this directory was given with --data-dir: restore the file from where it came from'



def _read_source(data_dir: str) -> str:
  path = os.path.join(data_dir, names.SOURCE_MANIFEST)
  if not fileio.exists(path):
    return data_dir
  with fileio.open(path) as file:
    return json.load(file).get('source', data_dir)


def describe_bad_rows(path: str, count: int, layout: layouts.Layout, listing: str) -> str:
  """The bad rows of a bad_rows.jsonl, causes first, read without holding them all.

  A bad line of the movies or users file comes before the ratings it leaves without a movie
  or user: those are counted, with the first one shown, not listed as if each were a cause.

  Args:
    path: the bad_rows.jsonl.
    count: how many rows it lists.
    layout: the release's layout, which names its movies and users files.
    listing: the file the message names as the full list.

  Returns:
    The lines of the message, indented.
  """
  catalogs = {t.file_name for role, t in layout.tables().items() if role != 'ratings'}
  causes, ratings, orphans = [], [], {}  # orphans: {missing from: [count, first row]}
  with fileio.open(path) as lines:
    for row in (json.loads(line) for line in lines if line.strip()):
      missing = row.get('missing_from')
      if os.path.basename(row['file']) in catalogs:
        causes = heapq.nsmallest(SHOWN_BAD_ROWS, causes + [row], key=_position)
      elif missing:
        entry = orphans.setdefault(missing, [0, row])
        entry[0] += 1
        entry[1] = min(entry[1], row, key=_position)
      else:
        ratings = heapq.nsmallest(SHOWN_BAD_ROWS, ratings + [row], key=_position)
  shown = causes + ratings[:max(0, SHOWN_BAD_ROWS - len(causes))]
  text = [f'  {row["file"]}, line {row["line"]}: {row["reason"]}' for row in shown]
  for name, (number, first) in sorted(orphans.items()):
    what = 'movie' if name == layout.movies.file_name else 'user'
    text.append(f'  {number:,} ratings name a {what} that {name} does not define (first: '
                f'{first["file"]}, line {first["line"]}: {first["reason"]})')
  unshown = count - len(shown) - sum(number for number, _ in orphans.values())
  if unshown > 0:
    text.append(f'  ... and {unshown:,} more')
  return '\n'.join(text) + f'\n  (all of them are listed in {listing})'


def _position(row: Dict[str, Any]):
  return row['file'], row['line']


def surviving_copy(bad_rows_path: str, examples_uri: str) -> str:
  """A copy of the bad rows beside the component's outputs: TFX removes a failed execution's
  output directory, and the message must name a file that is still there.

  Args:
    bad_rows_path: the bad_rows.jsonl in the examples artifact.
    examples_uri: the examples artifact's directory.

  Returns:
    The copy's path.
  """
  directory = os.path.join(os.path.dirname(os.path.dirname(examples_uri)), 'bad_rows')
  fileio.makedirs(directory)
  copy = os.path.join(directory, f'{os.path.basename(examples_uri.rstrip("/"))}.jsonl')
  fileio.copy(bad_rows_path, copy, overwrite=True)
  return copy


class Executor(base_beam_executor.BaseBeamExecutor):
  """Writes Examples split by the output config, plus the movie catalog as its own Examples."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
    """Reads the release into the examples and catalog artifacts (TFX calls it).

    Args:
      input_dict: none are used (the release is `input_base`).
      output_dict: the `examples` and `catalog` Examples artifacts.
      exec_properties: the spec's parameters: input_base, output_config, layout,
        max_bad_rows, holdout_users, output_data_format, output_file_format.

    Raises:
      IngestionError: the input is missing, or has more bad rows than max_bad_rows.
    """
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
    catalog.split_names = artifact_utils.encode_split_names([names.CATALOG_SPLIT])
    source = _read_source(data_dir)
    logger.info('Reading %s from %s', layout.description, source)

    with self._make_beam_pipeline() as pipeline:
      outputs = pipeline | 'Ingest' >> ingest.IngestMovieLens(
          data_dir, layout, splits, int(exec_properties[HOLDOUT_USERS_KEY]))
      for name, _ in splits:
        ingest.write_examples(outputs[name], artifact_utils.get_split_uri([examples], name),
                              name)
      ingest.write_examples(outputs[names.CATALOG_SPLIT],
                            artifact_utils.get_split_uri([catalog], names.CATALOG_SPLIT),
                            names.CATALOG_SPLIT)
      ingest.write_json_lines(outputs['bad_rows'], bad_rows_path, 'bad_rows')
      ingest.write_json_lines(outputs['counts'], counts_path, 'counts')

    with fileio.open(counts_path) as file:
      counts = json.load(file)
    num_bad, allowed = counts['bad_rows'], exec_properties[MAX_BAD_ROWS_KEY]
    if num_bad > allowed:
      raise IngestionError(
          f'{num_bad:,} rows of {data_dir} cannot be used (at most {allowed:,} may be '
          f'skipped; raise --max-bad-rows to skip them):\n'
          + describe_bad_rows(bad_rows_path, num_bad, layout,
                              surviving_copy(bad_rows_path, examples.uri)))
    if num_bad:
      logger.warning('Skipped %d bad rows (allowed: %d):\n%s', num_bad, allowed,
                     describe_bad_rows(bad_rows_path, num_bad, layout, bad_rows_path))

    for artifact in (examples, catalog):
      examples_utils.set_payload_format(artifact, exec_properties['output_data_format'])
      examples_utils.set_file_format(artifact, write_split.to_file_format_str(file_format))
      artifact.set_string_custom_property(names.DATA_SOURCE, source)
      artifact.set_string_custom_property(names.DATA_LAYOUT, layout.name)
    for name, _ in splits:
      examples.set_int_custom_property(f'num_examples_{name}', counts[f'examples_{name}'])
    examples.set_int_custom_property('num_bad_rows_skipped', num_bad)
    examples.set_int_custom_property('num_users', counts['users'])
    catalog.set_int_custom_property('num_movies', counts['movies'])
    logger.info('%s ratings -> %s; catalog of %s movies; %s users; %d bad rows skipped',
                f'{sum(counts[f"examples_{n}"] for n, _ in splits):,}',
                ', '.join(f'{n} {counts[f"examples_{n}"]:,}' for n, _ in splits),
                f'{counts["movies"]:,}', f'{counts["users"]:,}', num_bad)
