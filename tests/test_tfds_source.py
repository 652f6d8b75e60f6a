"""TensorFlow Datasets as a source: a TFDS-prepared MovieLens reads into the same rows as the
raw files it was prepared from.

The datasets are prepared by TFDS' own MovieLens builder from synthetic files written by the
test; only its download is replaced, as TFDS' own builder tests do
(`tfds.testing.DatasetBuilderTestCase`), so no network is needed.
"""
import collections
import os
from unittest import mock

import pytest

from data import fetch
from data import tfds_source
from tests import synthetic

RELEASES = {'100k': 'grouplens-100k', '1m': 'grouplens-1m', 'latest-small': 'grouplens-csv'}


def prepare_with_tfds(raw_parent: str, data_dir: str, config: str) -> None:
  import tensorflow_datasets as tfds
  for part in ('ratings', 'movies'):
    builder = tfds.builder(f'movielens/{config}-{part}', data_dir=data_dir)
    with mock.patch.object(tfds.download.DownloadManager, 'download_and_extract',
                           return_value=raw_parent):
      builder.download_and_prepare()


def read_rows(directory):
  """(layout name, {role: the multiset of its records})."""
  layout, tables = synthetic.read_release(directory)
  return layout.name, {role: collections.Counter(tuple(sorted(
      (k, tuple(v) if isinstance(v, list) else v) for k, v in r.items())) for r in records)
                       for role, records in tables.items()}


@pytest.fixture(scope='module')
def tfds_dir(tmp_path_factory):
  """A TFDS data directory with every release of RELEASES prepared from synthetic files."""
  root = tmp_path_factory.mktemp('tfds')
  release = synthetic.make_release(num_users=12, num_movies=15, num_ratings=90, seed=5)
  for config, layout in RELEASES.items():
    raw_parent = root / f'raw-{config}'
    synthetic.WRITERS[layout](release, str(raw_parent / f'ml-{config}'))
    prepare_with_tfds(str(raw_parent), str(root / 'tensorflow_datasets'), config)
  return root


@pytest.mark.parametrize('config', sorted(RELEASES))
def test_a_tfds_movielens_reads_into_the_rows_of_its_raw_files(config, tfds_dir, tmp_path):
  assert tfds_source.find_prepared(str(tfds_dir / 'tensorflow_datasets'),
                                   f'{config}-ratings') is not None
  tfds_source.write_release(str(tfds_dir / 'tensorflow_datasets'), config, str(tmp_path))
  layout, rows = read_rows(str(tmp_path))
  raw_layout, raw_rows = read_rows(str(tfds_dir / f'raw-{config}' / f'ml-{config}'))
  assert layout == raw_layout == RELEASES[config]
  assert rows == raw_rows


def test_fetch_from_tfds_verifies_and_records_the_source(tfds_dir, tmp_path, monkeypatch):
  monkeypatch.setitem(fetch.RELEASES, '1m', fetch.dataclasses.replace(
      fetch.RELEASES['1m'], rows={'movies': 15, 'users': 12, 'ratings': 90}))
  data_dir = str(tfds_dir / 'tensorflow_datasets')
  said = []
  manifest = fetch.fetch(str(tmp_path / 'ml-1m'), source=f'tfds:{data_dir}', release='1m',
                         say=said.append)
  assert manifest['source'] == f'TensorFlow Datasets (movielens/1m-ratings in {data_dir})'
  assert manifest['layout'] == 'grouplens-1m' and manifest['release'] == '1m'
  assert said[-1].startswith('MovieLens 1m from TensorFlow Datasets')


def test_an_unprepared_tfds_dataset_says_how_to_prepare_it(tmp_path):
  with pytest.raises(fetch.FetchError, match=r'tfds build movielens/25m-ratings'):
    fetch.fetch(str(tmp_path / 'x'), source=f'tfds:{tmp_path}', release='25m',
                say=lambda _: None)
  assert not os.path.exists(tmp_path / 'x')
