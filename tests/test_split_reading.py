"""Reading a file in byte ranges: every line once, whatever the range size; bad rows get
their line numbers back from their offsets."""
import os

import apache_beam as beam
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from components.example_gen import ingest


def write_lines(path, lines, ending='\n'):
  with open(path, 'wb') as file:
    file.write(''.join(line + ending for line in lines).encode())
  return str(path)


def read_ranges(path, range_bytes):
  """The lines of every byte range, as the pipeline reads them, in order."""
  lines = []
  for byte_range in ingest._byte_ranges(path, range_bytes):
    for offset, block in ingest._read_range(byte_range):
      lines.extend(ingest._numbered((offset, block)))
  return lines


@pytest.mark.parametrize('range_bytes', [1, 2, 7, 10, 11, 64, 1 << 20])
@pytest.mark.parametrize('ending', ['\n', '\r\n'])
def test_every_line_is_read_once_with_its_offset_whatever_the_ranges(tmp_path, range_bytes,
                                                                     ending):
  lines = [f'{i}::{"x" * (i % 13)}' for i in range(200)] + ['', 'last']
  path = write_lines(tmp_path / 'f.dat', lines, ending)
  with open(path, 'rb') as file:
    content = file.read()
  read = read_ranges(path, range_bytes)
  assert [line.decode().rstrip('\r\n') for _, line in read] == lines
  assert all(content[offset:offset + len(line)] == line for offset, line in read)


def test_a_last_line_without_its_ending_is_read(tmp_path):
  path = tmp_path / 'f.dat'
  path.write_bytes(b'a\nbb\nccc')
  assert [line for _, line in read_ranges(str(path), 3)] == [b'a\n', b'bb\n', b'ccc']


def test_blocks_stay_near_their_size(tmp_path, monkeypatch):
  monkeypatch.setattr(ingest, 'BLOCK_BYTES', 100)
  path = write_lines(tmp_path / 'f.dat', ['y' * 9] * 1000)  # 10 bytes a line
  blocks = list(ingest._read_range((path, 0, os.path.getsize(path))))
  assert len(blocks) == 100 and all(len(lines) == 10 for _, lines in blocks)


def test_the_beam_transform_spreads_ranges_and_reads_every_line(tmp_path):
  lines = [f'line {i}' for i in range(500)]
  path = write_lines(tmp_path / 'f.dat', lines)
  with test_pipeline.TestPipeline() as pipeline:
    read = (pipeline
            | ingest.ReadNumberedLines(path, range_bytes=97)
            | beam.FlatMap(ingest._numbered)
            | beam.MapTuple(lambda offset, line: line.decode().rstrip('\n')))
    assert_that(read, equal_to(lines))


def test_bad_rows_get_line_numbers_from_their_offsets(tmp_path, monkeypatch):
  monkeypatch.setattr(ingest, 'COUNT_BYTES', 16)  # counting crosses block boundaries
  lines = [f'row {i}' for i in range(1, 101)]
  path = write_lines(tmp_path / 'f.dat', lines)
  offsets = {number: sum(len(line) + 1 for line in lines[:number - 1]) for number in (1, 50, 100)}
  rows = [ingest.bad_row(path, offsets[100], 'last'),
          ingest.bad_row(path, offsets[1], 'first'),
          ingest.bad_row(path, offsets[50], f'same id as line {ingest.FIRST_LINE}', offsets[1])]
  numbered = list(ingest._line_numbers((path, rows)))
  assert sorted((row['line'], row['reason']) for row in numbered) == [
      (1, 'first'), (50, 'same id as line 1'), (100, 'last')]
