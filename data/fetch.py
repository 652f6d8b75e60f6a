"""Fetch MovieLens 100k once, verify it, and say where it came from.

    python -m data.fetch                      # GroupLens if reachable, else the PyPI copy
    python -m data.fetch --source pypi        # the copy inside the recbole 1.2.1 wheel
    python -m data.fetch --source ~/ml-100k   # a directory (or ml-100k.zip) you already have

The files are stored as their source lays them out (GroupLens' u.data/u.item/u.user or
RecBole's ml-100k.inter/.item/.user; the pipeline reads both into the same rows) with a
SOURCE.json that records the source, the row counts and each file's SHA-256. A later call
finds SOURCE.json, checks the files against it and fetches nothing.
MovieLens' licence forbids redistribution: the directory is ignored by git.
"""
import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from typing import Dict, Optional

from data import layouts

DEFAULT_DEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'movielens', 'ml-100k')
MANIFEST = 'SOURCE.json'
GROUPLENS_URL = 'https://files.grouplens.org/datasets/movielens/ml-100k.zip'
RECBOLE_WHEEL = 'recbole==1.2.1'
RECBOLE_DIR = 'recbole/dataset_example/ml-100k/'
# MovieLens 100k as published: 100,000 ratings by 943 users of 1,682 movies.
EXPECTED_ROWS = {'ratings': 100_000, 'movies': 1_682, 'users': 943}
# SHA-256 of the three files in the recbole 1.2.1 wheel: that copy never changes.
RECBOLE_SHA256 = {
    'ml-100k.inter': '4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff',
    'ml-100k.item': '51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532',
    'ml-100k.user': '4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972',
}


class FetchError(RuntimeError):
  """MovieLens could not be fetched or did not verify; the message says why and what to do."""


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as file:
    for block in iter(lambda: file.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def verify(directory: str, origin: Optional[str] = None) -> Dict[str, object]:
  """Reads every file of a MovieLens 100k directory; returns its layout, row counts, checksums.

  Raises FetchError naming the file (as found in `origin`, default `directory`), line and
  problem when anything does not read or the counts are not those of MovieLens 100k.
  """
  origin = origin or directory
  try:
    layout = layouts.detect_layout(directory, layouts.list_files(directory))
  except layouts.LayoutError as error:
    raise FetchError(str(error)) from None
  counts, records = {}, {}
  for role, table in layout.tables().items():
    records[role], bad = layouts.read_table(os.path.join(directory, table.file_name), table)
    if bad:
      line, reason = bad[0]
      raise FetchError(f'{table.file_name} from {origin}, line {line}: {reason} '
                       f'({len(bad)} bad lines in all)')
    counts[role] = len(records[role])
  for role, key in (('movies', 'movie_id'), ('users', 'user_id')):
    known = {record[key] for record in records[role]}
    unknown = {rating[key] for rating in records['ratings']} - known
    if unknown:
      raise FetchError(f'{origin}: ratings name {len(unknown)} {role} missing from '
                       f'{layout.tables()[role].file_name}, e.g. {sorted(unknown)[:3]}')
  if counts != EXPECTED_ROWS:
    raise FetchError(f'{origin} holds {counts}, not MovieLens 100k ({EXPECTED_ROWS})')
  return {'layout': layout.name,
          'rows': counts,
          'sha256': {t.file_name: _sha256(os.path.join(directory, t.file_name))
                     for t in layout.tables().values()}}


def _install(files: Dict[str, bytes], dest: str, source: str) -> Dict[str, object]:
  """Writes the files into a fresh staging directory, verifies them, then moves them to dest."""
  parent = os.path.dirname(os.path.abspath(dest))
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix='.fetch-', dir=parent)
  os.chmod(staging, 0o755)
  try:
    for name, content in files.items():
      with open(os.path.join(staging, name), 'wb') as file:
        file.write(content)
    manifest = {'source': source, **verify(staging, source)}
    with open(os.path.join(staging, MANIFEST), 'w') as file:
      json.dump(manifest, file, indent=2)
    if os.path.exists(dest):
      shutil.rmtree(dest)
    os.replace(staging, dest)
    return manifest
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def _files_from_grouplens_zip(archive: bytes, origin: str) -> Dict[str, bytes]:
  wanted = {'u.data', 'u.item', 'u.user'}
  with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
    files = {os.path.basename(n): zipped.read(n) for n in zipped.namelist()
             if os.path.basename(n) in wanted}
  if set(files) != wanted:
    raise FetchError(f'{origin} lacks {", ".join(sorted(wanted - set(files)))}')
  return files


def fetch_grouplens(timeout: float = 20) -> Dict[str, bytes]:
  try:
    with urllib.request.urlopen(GROUPLENS_URL, timeout=timeout) as response:
      archive = response.read()
  except OSError as error:
    raise FetchError(f'GroupLens is unreachable ({error})') from None
  return _files_from_grouplens_zip(archive, GROUPLENS_URL)


def fetch_pypi() -> Dict[str, bytes]:
  """The three MovieLens 100k files inside the recbole wheel, downloaded without installing."""
  with tempfile.TemporaryDirectory() as download:
    command = [sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps',
               '--only-binary=:all:', RECBOLE_WHEEL, '--dest', download]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    wheels = [n for n in os.listdir(download) if n.endswith('.whl')]
    if result.returncode != 0 or not wheels:
      raise FetchError(f'pip could not download {RECBOLE_WHEEL}: {result.stderr.strip()[-500:]}')
    with zipfile.ZipFile(os.path.join(download, wheels[0])) as wheel:
      files = {name: wheel.read(RECBOLE_DIR + name) for name in RECBOLE_SHA256}
  for name, content in files.items():
    if hashlib.sha256(content).hexdigest() != RECBOLE_SHA256[name]:
      raise FetchError(f'{name} in {RECBOLE_WHEEL} does not have the expected SHA-256')
  return files


def fetch_local(path: str) -> Dict[str, bytes]:
  """The files of a MovieLens 100k directory or ml-100k.zip the user already has."""
  path = os.path.expanduser(path)
  if os.path.isfile(path) and zipfile.is_zipfile(path):
    with open(path, 'rb') as file:
      return _files_from_grouplens_zip(file.read(), path)
  try:
    layout = layouts.detect_layout(path, layouts.list_files(path))
  except layouts.LayoutError as error:
    raise FetchError(str(error)) from None
  files = {}
  for table in layout.tables().values():
    with open(os.path.join(path, table.file_name), 'rb') as file:
      files[table.file_name] = file.read()
  return files


def existing(dest: str) -> Optional[Dict[str, object]]:
  """The manifest of an earlier fetch into dest if its files are still as fetched."""
  try:
    with open(os.path.join(dest, MANIFEST)) as file:
      manifest = json.load(file)
    unchanged = all(_sha256(os.path.join(dest, name)) == digest
                    for name, digest in manifest['sha256'].items())
  except (OSError, ValueError, KeyError):
    return None
  return manifest if unchanged else None


def fetch(dest: str = DEFAULT_DEST, source: str = 'auto', force: bool = False,
          say=print) -> Dict[str, object]:
  """Makes sure dest holds verified MovieLens 100k; returns its manifest."""
  manifest = None if force else existing(dest)
  if manifest:
    say(f'MovieLens 100k is already in {dest} (from {manifest["source"]}; verified).')
    return manifest
  if source in ('auto', 'grouplens'):
    say(f'Fetching MovieLens 100k from GroupLens ({GROUPLENS_URL}) ...')
    try:
      files, origin = fetch_grouplens(), f'GroupLens ({GROUPLENS_URL})'
    except FetchError as error:
      if source == 'grouplens':
        raise
      say(f'  {error}; using the copy inside {RECBOLE_WHEEL} on PyPI instead.')
      files, origin = fetch_pypi(), f'PyPI: the MovieLens 100k copy inside {RECBOLE_WHEEL}'
  elif source == 'pypi':
    say(f'Fetching MovieLens 100k from the copy inside {RECBOLE_WHEEL} on PyPI ...')
    files, origin = fetch_pypi(), f'PyPI: the MovieLens 100k copy inside {RECBOLE_WHEEL}'
  else:
    say(f'Copying MovieLens 100k from {source} ...')
    files, origin = fetch_local(source), os.path.abspath(os.path.expanduser(source))
  manifest = _install(files, dest, origin)
  rows = manifest['rows']
  say(f'MovieLens 100k from {origin}: verified {rows["ratings"]:,} ratings, '
      f'{rows["movies"]:,} movies, {rows["users"]:,} users ({manifest["layout"]} layout) '
      f'in {dest}.')
  return manifest


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m data.fetch', description=__doc__.split('\n')[0],
      formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n', 2)[2])
  parser.add_argument('--dest', default=DEFAULT_DEST,
                      help='directory to store MovieLens 100k in (default: %(default)s)')
  parser.add_argument('--source', default='auto',
                      help="'auto' (GroupLens, then PyPI), 'grouplens', 'pypi', or a local "
                      'directory or ml-100k.zip (default: %(default)s)')
  parser.add_argument('--force', action='store_true',
                      help='fetch again even if dest already holds verified data')
  args = parser.parse_args(argv)
  try:
    fetch(args.dest, args.source, args.force)
  except FetchError as error:
    print(f'error: {error}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
