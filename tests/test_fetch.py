"""Fetching and verifying MovieLens 100k: sources, verification, fetching once."""
import json
import os
import shutil
import zipfile

import pytest

from data import fetch
from data import features as f
from data import layouts
from tests import synthetic


@pytest.fixture
def small_100k(monkeypatch):
  """A synthetic release, with the verifier told to expect its counts."""
  release = synthetic.make_release(num_users=10, num_movies=12, num_ratings=50)
  monkeypatch.setattr(fetch, 'EXPECTED_ROWS', {'ratings': 50, 'movies': 12, 'users': 10})
  return release


def test_fetch_from_a_local_directory_verifies_and_records_the_source(small_100k, tmp_path):
  source = synthetic.write_grouplens_100k(small_100k, str(tmp_path / 'mine'))
  dest = str(tmp_path / 'dest')
  said = []
  manifest = fetch.fetch(dest, source=source, say=said.append)
  assert manifest['source'] == source and manifest['layout'] == 'grouplens-100k'
  assert manifest['rows'] == {'ratings': 50, 'movies': 12, 'users': 10}
  assert sorted(os.listdir(dest)) == ['SOURCE.json', 'u.data', 'u.item', 'u.user']
  assert 'verified 50 ratings, 12 movies, 10 users' in said[-1]
  with open(os.path.join(dest, 'SOURCE.json')) as file:
    assert json.load(file)['sha256'] == manifest['sha256']


def test_a_second_fetch_fetches_nothing(small_100k, tmp_path):
  source = synthetic.write_grouplens_100k(small_100k, str(tmp_path / 'mine'))
  dest = str(tmp_path / 'dest')
  fetch.fetch(dest, source=source, say=lambda _: None)
  shutil.rmtree(source)  # a second fetch from it would fail
  said = []
  fetch.fetch(dest, source=source, say=said.append)
  assert said == [f'MovieLens 100k is already in {dest} (from {source}; verified).']


def test_a_changed_file_is_fetched_again(small_100k, tmp_path):
  source = synthetic.write_grouplens_100k(small_100k, str(tmp_path / 'mine'))
  dest = str(tmp_path / 'dest')
  fetch.fetch(dest, source=source, say=lambda _: None)
  synthetic.append_line(os.path.join(dest, 'u.data'), '1\t1\t1\t1')
  assert fetch.existing(dest) is None
  said = []
  fetch.fetch(dest, source=source, say=said.append)
  assert said[0].startswith('Copying MovieLens 100k from')


def test_a_grouplens_zip_is_read(small_100k, tmp_path):
  directory = synthetic.write_grouplens_100k(small_100k, str(tmp_path / 'ml-100k'))
  archive = str(tmp_path / 'ml-100k.zip')
  with zipfile.ZipFile(archive, 'w') as zipped:
    for name in ('u.data', 'u.item', 'u.user'):
      zipped.write(os.path.join(directory, name), f'ml-100k/{name}')
  manifest = fetch.fetch(str(tmp_path / 'dest'), source=archive, say=lambda _: None)
  assert manifest['rows']['ratings'] == 50


def test_verification_names_the_bad_line_and_keeps_nothing(small_100k, tmp_path):
  source = synthetic.write_grouplens_100k(small_100k, str(tmp_path / 'mine'))
  synthetic.append_line(os.path.join(source, 'u.user'), '11|20|Q|writer|12345')
  dest = str(tmp_path / 'dest')
  with pytest.raises(fetch.FetchError, match=r"u.user from .*mine, line 11: gender 'Q'"):
    fetch.fetch(dest, source=source, say=lambda _: None)
  assert not os.path.exists(dest)


def test_wrong_counts_are_not_movielens_100k(small_100k, tmp_path, monkeypatch):
  monkeypatch.setattr(fetch, 'EXPECTED_ROWS', {'ratings': 100_000, 'movies': 1_682,
                                               'users': 943})
  source = synthetic.write_grouplens_100k(small_100k, str(tmp_path / 'mine'))
  with pytest.raises(fetch.FetchError, match='not MovieLens 100k'):
    fetch.fetch(str(tmp_path / 'dest'), source=source, say=lambda _: None)


def test_a_rating_of_an_unknown_movie_fails_verification(small_100k, tmp_path):
  source = synthetic.write_grouplens_100k(small_100k, str(tmp_path / 'mine'))
  synthetic.append_line(os.path.join(source, 'u.data'), '1\t99\t3\t881250949')
  with pytest.raises(fetch.FetchError, match=r'ratings name 1 movies missing from u.item'):
    fetch.fetch(str(tmp_path / 'dest'), source=source, say=lambda _: None)


def test_the_fetched_movielens_100k_is_complete_and_titled_as_grouplens():
  """The real data `make test` fetched: counts, and GroupLens' titles from either source."""
  directory = fetch.DEFAULT_DEST
  if fetch.existing(directory) is None:
    pytest.skip(f'MovieLens 100k is not fetched into {directory} (make data)')
  layout = layouts.detect_layout(directory, layouts.list_files(directory))
  movies, bad = layouts.read_table(os.path.join(directory, layout.movies.file_name),
                                   layout.movies)
  assert bad == []
  titles = {m[f.MOVIE_ID]: m[f.MOVIE_TITLE] for m in movies}
  assert len(titles) == 1682 and len(set(titles.values())) == 1664
  assert titles['1'] == 'Toy Story (1995)'
  assert titles['267'] == 'unknown'
  assert titles['1412'] == 'Land Before Time III: The Time of the Great Giving (1995) (V)'
  assert fetch.verify(directory)['rows'] == fetch.EXPECTED_ROWS
