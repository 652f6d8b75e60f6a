"""Fetching and verifying MovieLens 100k: sources, verification, fetching once."""
import dataclasses
import hashlib
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
  expect_rows(monkeypatch, '100k', {'ratings': 50, 'movies': 12, 'users': 10})
  return release


def expect_rows(monkeypatch, release, rows):
  monkeypatch.setitem(fetch.RELEASES, release,
                      dataclasses.replace(fetch.RELEASES[release], rows=rows))


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
  expect_rows(monkeypatch, '100k', {'ratings': 100_000, 'movies': 1_682, 'users': 943})
  source = synthetic.write_grouplens_100k(small_100k, str(tmp_path / 'mine'))
  with pytest.raises(fetch.FetchError, match='not the expected'):
    fetch.fetch(str(tmp_path / 'dest'), source=source, say=lambda _: None)


def test_a_rating_of_an_unknown_movie_fails_verification(small_100k, tmp_path):
  source = synthetic.write_grouplens_100k(small_100k, str(tmp_path / 'mine'))
  synthetic.append_line(os.path.join(source, 'u.data'), '1\t99\t3\t881250949')
  with pytest.raises(fetch.FetchError, match=r'ratings name 1 movies missing from u.item'):
    fetch.fetch(str(tmp_path / 'dest'), source=source, say=lambda _: None)


def test_the_fetched_movielens_100k_is_complete_and_titled_as_grouplens():
  """The real data `make test` fetched: counts, and GroupLens' titles from either source."""
  directory = fetch.default_dest('100k')
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
  assert fetch.verify(directory)['rows'] == fetch.RELEASES['100k'].rows


def zip_release(directory, archive, folder='ml-100k', extra=()):
  with zipfile.ZipFile(archive, 'w') as zipped:
    for name in sorted(os.listdir(directory)):
      zipped.write(os.path.join(directory, name), f'{folder}/{name}')
    for name, content in extra:
      zipped.writestr(name, content)
  return archive


def serve_from_file(monkeypatch, release, archive):
  """Points a release's GroupLens URL at a local file (urllib reads file:// URLs alike)."""
  with open(archive, 'rb') as file:
    digest = hashlib.sha256(file.read()).hexdigest()
  monkeypatch.setitem(fetch.RELEASES, release, dataclasses.replace(
      fetch.RELEASES[release], zip_sha256=digest))
  monkeypatch.setattr(fetch, 'GROUPLENS', f'file://{os.path.dirname(archive)}/')


def test_a_release_downloads_from_grouplens_checked_against_its_sha256(tmp_path, monkeypatch):
  release = synthetic.make_release(num_users=10, num_movies=12, num_ratings=50)
  expect_rows(monkeypatch, '1m', {'ratings': 50, 'movies': 12, 'users': 10})
  directory = synthetic.write_grouplens_1m(release, str(tmp_path / 'ml-1m'))
  (tmp_path / 'site').mkdir()
  serve_from_file(monkeypatch, '1m', zip_release(directory, str(tmp_path / 'site' / 'ml-1m.zip'),
                                                 'ml-1m'))
  said = []
  manifest = fetch.fetch(str(tmp_path / 'dest'), source='grouplens', release='1m',
                         say=said.append)
  assert manifest['layout'] == 'grouplens-1m' and manifest['release'] == '1m'
  assert manifest['source'] == f'GroupLens (file://{tmp_path}/site/ml-1m.zip)'
  assert sorted(os.listdir(tmp_path / 'dest')) == [
      'SOURCE.json', 'movies.dat', 'ratings.dat', 'users.dat']
  # A file that is not the registered one is refused, and nothing is kept.
  monkeypatch.setitem(fetch.RELEASES, '1m', dataclasses.replace(
      fetch.RELEASES['1m'], zip_sha256='0' * 64))
  with pytest.raises(fetch.FetchError, match='does not have the SHA-256 registered'):
    fetch.fetch(str(tmp_path / 'dest2'), source='grouplens', release='1m', say=said.append)
  assert not os.path.exists(tmp_path / 'dest2')


def test_auto_falls_through_to_the_next_source_and_says_why(tmp_path, monkeypatch):
  release = synthetic.make_release(num_users=10, num_movies=12, num_ratings=50)
  expect_rows(monkeypatch, '1m', {'ratings': 50, 'movies': 12, 'users': 10})
  monkeypatch.setattr(fetch, 'GROUPLENS', f'file://{tmp_path}/nowhere/')
  monkeypatch.setattr(fetch, 'DEFAULT_TFDS_DIR', str(tmp_path / 'no-tfds'))
  said = []
  with pytest.raises(fetch.FetchError, match='GroupLens is unreachable'):
    fetch.fetch(str(tmp_path / 'dest'), release='1m', say=said.append)
  assert said[0].startswith('Fetching MovieLens 1m from GroupLens')
  del release


def write_recbole_wheel(release, directory, tamper=False):
  """A wheel named and laid out as recbole 1.2.1 (metadata, the three MovieLens 100k files)
  holding a synthetic release; its files' SHA-256, the copy a tampered wheel breaks."""
  files = synthetic.write_recbole_100k(release, os.path.join(directory, 'files'))
  digests, wheel = {}, os.path.join(directory, 'recbole-1.2.1-py3-none-any.whl')
  with zipfile.ZipFile(wheel, 'w') as zipped:
    for name in sorted(fetch.RECBOLE_SHA256):
      with open(os.path.join(files, name), 'rb') as file:
        content = file.read()
      digests[name] = hashlib.sha256(content).hexdigest()  # before any tampering
      if tamper and name.endswith('.inter'):  # two ratings swapped: still a valid file
        lines = content.split(b'\n')
        lines[1], lines[2] = lines[2], lines[1]
        content = b'\n'.join(lines)
      zipped.writestr(fetch.RECBOLE_DIR + name, content)
    zipped.writestr('recbole-1.2.1.dist-info/METADATA',
                    'Metadata-Version: 2.1\nName: recbole\nVersion: 1.2.1\n')
    zipped.writestr('recbole-1.2.1.dist-info/WHEEL',
                    'Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n'
                    'Tag: py3-none-any\n')
    zipped.writestr('recbole-1.2.1.dist-info/RECORD', '')
  return digests


def serve_pypi_from(monkeypatch, directory):
  """pip reads packages from this directory instead of PyPI (its own options, from the
  environment the fetcher's `pip download` inherits)."""
  monkeypatch.setenv('PIP_NO_INDEX', '1')
  monkeypatch.setenv('PIP_FIND_LINKS', str(directory))


def test_auto_falls_through_grouplens_to_the_pypi_wheel_checked_file_by_file(
    small_100k, tmp_path, monkeypatch):
  digests = write_recbole_wheel(small_100k, str(tmp_path / 'index'))
  monkeypatch.setattr(fetch, 'RECBOLE_SHA256', digests)
  expect_rows(monkeypatch, '100k', {'ratings': 50, 'movies': 12, 'users': 10})
  serve_pypi_from(monkeypatch, tmp_path / 'index')
  monkeypatch.setattr(fetch, 'GROUPLENS', f'file://{tmp_path}/nowhere/')
  monkeypatch.setattr(fetch, 'DEFAULT_TFDS_DIR', str(tmp_path / 'no-tfds'))
  said = []
  manifest = fetch.fetch(str(tmp_path / 'dest'), say=said.append)
  assert manifest['source'] == 'PyPI: the MovieLens 100k copy inside recbole==1.2.1'
  assert manifest['layout'] == 'recbole-100k' and manifest['rows']['ratings'] == 50
  assert any('GroupLens' in line and 'unreachable' in line for line in said)
  assert any(line.startswith('Fetching MovieLens 100k from the copy inside recbole==1.2.1')
             for line in said)
  # A wheel whose files differ from the registered ones is refused, and nothing is kept.
  write_recbole_wheel(small_100k, str(tmp_path / 'tampered'), tamper=True)
  serve_pypi_from(monkeypatch, tmp_path / 'tampered')
  with pytest.raises(fetch.FetchError, match='does not have the expected SHA-256'):
    fetch.fetch(str(tmp_path / 'dest2'), source='pypi', say=said.append)
  assert not os.path.exists(tmp_path / 'dest2')


@pytest.mark.parametrize('entry', ['../escaped.dat', '/tmp/absolute-escape.dat',
                                   'ml-1m/../../ratings.dat', 'link'])
def test_a_zip_with_entries_outside_its_folder_is_refused_writing_nothing(entry, tmp_path,
                                                                          monkeypatch):
  release = synthetic.make_release(num_users=10, num_movies=12, num_ratings=50)
  expect_rows(monkeypatch, '1m', {'ratings': 50, 'movies': 12, 'users': 10})
  directory = synthetic.write_grouplens_1m(release, str(tmp_path / 'ml-1m'))
  archive = zip_release(directory, str(tmp_path / 'evil.zip'), 'ml-1m')
  with zipfile.ZipFile(archive, 'a') as zipped:
    info = zipfile.ZipInfo(entry)
    if entry == 'link':  # a symbolic link to /etc/passwd
      info.external_attr = (0o120777 << 16)
    zipped.writestr(info, '/etc/passwd' if entry == 'link' else 'x')
  (tmp_path / 'data').mkdir()
  with pytest.raises(fetch.FetchError, match='point outside its folder'):
    fetch.fetch(str(tmp_path / 'data' / 'ml-1m'), source=archive, release='1m',
                say=lambda _: None)
  assert os.listdir(tmp_path / 'data') == []
  assert sorted(os.listdir(tmp_path)) == ['data', 'evil.zip', 'ml-1m']


def test_an_archive_that_unpacks_to_more_than_any_release_is_refused(tmp_path, monkeypatch):
  monkeypatch.setattr(fetch, 'MAX_EXTRACTED_BYTES', 1000)
  archive = tmp_path / 'ml-1m.zip'
  with zipfile.ZipFile(archive, 'w', zipfile.ZIP_DEFLATED) as zipped:
    zipped.writestr('ml-1m/ratings.dat', '1::1::5::1\n' * 1000)
  with pytest.raises(fetch.FetchError, match='would unpack to'):
    fetch.fetch(str(tmp_path / 'dest'), source=str(archive), release='1m', say=lambda _: None)


def test_a_corrupt_archive_is_a_clear_error(tmp_path):
  archive = tmp_path / 'ml-1m.zip'
  archive.write_bytes(b'PK\x03\x04 this is not a zip')
  with pytest.raises(fetch.FetchError, match='is not a readable zip'):
    fetch.fetch(str(tmp_path / 'dest'), source=str(archive), release='1m', say=lambda _: None)
  assert not (tmp_path / 'dest').exists()


def test_the_command_line_fetches_a_release_into_its_directory(tmp_path, monkeypatch, capsys):
  release = synthetic.make_release(num_users=10, num_movies=12, num_ratings=50)
  expect_rows(monkeypatch, '25m', {'ratings': 50, 'movies': 12})
  directory = synthetic.write_grouplens_csv(release, str(tmp_path / 'mine'))
  monkeypatch.setattr(fetch, 'DATA_ROOT', str(tmp_path / 'movielens'))
  assert fetch.main(['--release', '25m', '--source', directory]) == 0
  assert 'verified 50 ratings, 12 movies (grouplens-csv layout)' in capsys.readouterr().out
  assert (tmp_path / 'movielens' / 'ml-25m' / 'ratings.csv').exists()
  assert fetch.main(['--release', '25m', '--source', str(tmp_path / 'none'), '--force']) == 1
  assert 'error:' in capsys.readouterr().err
