"""Fetch a MovieLens release once, verify it, and say where it came from.

    python -m data.fetch                          # 100k: a TFDS copy, GroupLens, or PyPI
    python -m data.fetch --release 1m             # 1m, 20m, 25m, latest-small, 100k
    python -m data.fetch --release 1m --source tfds:~/tensorflow_datasets
    python -m data.fetch --source pypi            # 100k: the copy inside the recbole wheel
    python -m data.fetch --release 1m --source ~/Downloads/ml-1m.zip   # or a directory

Sources, for --source auto, in this order:
  tfds      a MovieLens that TensorFlow Datasets already prepared (the tutorial's
            `tfds.load("movielens/100k-ratings")` leaves one in ~/tensorflow_datasets),
            read through the TFDS API and written out in the release's own layout;
  grouplens the release's zip from GroupLens, checked against its SHA-256;
  pypi      (100k only) the copy inside the recbole 1.2.1 wheel, never installed.
The files are stored under data/movielens/ml-<release>/ (ignored by git: MovieLens'
licence forbids redistribution) with a SOURCE.json recording the source, the row counts and
each file's SHA-256; a later call checks the files against it and fetches nothing.
"""
import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
import zlib
from typing import Callable, Dict, Optional

from data import layouts, tfds_source
from shared import names

DATA_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'movielens')
GROUPLENS = 'https://files.grouplens.org/datasets/movielens/'
RECBOLE_WHEEL = 'recbole==1.2.1'
RECBOLE_DIR = 'recbole/dataset_example/ml-100k/'
# SHA-256 of the three files in the recbole 1.2.1 wheel: that copy never changes.
RECBOLE_SHA256 = {
    'ml-100k.inter': '4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff',
    'ml-100k.item': '51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532',
    'ml-100k.user': '4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972',
}
DEFAULT_TFDS_DIR = os.path.join('~', 'tensorflow_datasets')


@dataclasses.dataclass(frozen=True)
class Release:
  """One GroupLens release: its zip (size and SHA-256 as TensorFlow Datasets registers
  them), the folder inside it, and the rows it holds."""
  name: str
  zip_sha256: str
  zip_bytes: int
  rows: Dict[str, int]
  tfds_config: str  # TFDS' builder configs are '<tfds_config>-ratings' and '-movies'

  @property
  def folder(self) -> str:
    return f'ml-{self.name}'

  @property
  def url(self) -> str:
    return f'{GROUPLENS}{self.folder}.zip'

  @property
  def title(self) -> str:
    return f'MovieLens {self.name}'


RELEASES = {release.name: release for release in (
    Release('100k', '50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229',
            4_924_029, {'ratings': 100_000, 'movies': 1_682, 'users': 943}, '100k'),
    Release('1m', 'a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20',
            5_917_549, {'ratings': 1_000_209, 'movies': 3_883, 'users': 6_040}, '1m'),
    Release('20m', '96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3',
            198_702_078, {'ratings': 20_000_263, 'movies': 27_278}, '20m'),
    Release('25m', '8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa',
            261_978_986, {'ratings': 25_000_095, 'movies': 62_423}, '25m'),
    # GroupLens updates "latest"; this is the snapshot of September 2018 that TFDS pins.
    Release('latest-small', '696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436',
            978_202, {'ratings': 100_836, 'movies': 9_742}, 'latest-small'),
)}
DEFAULT_RELEASE = '100k'


def default_dest(release: str) -> str:
  return os.path.join(DATA_ROOT, RELEASES[release].folder)


class FetchError(RuntimeError):
  """MovieLens could not be fetched or did not verify; the message says why and what to do."""


def sha256_file(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as file:
    for block in iter(lambda: file.read(1 << 22), b''):
      digest.update(block)
  return digest.hexdigest()


def verify(directory: str, expected: Optional[Dict[str, int]] = None,
           origin: Optional[str] = None) -> Dict[str, object]:
  """Reads every line of a MovieLens directory; returns its layout, row counts and checksums.

  Streams the files (MovieLens 25M is 25 million lines), keeping only the movie and user ids.
  Raises FetchError naming the file (as found in `origin`, default `directory`), line and
  problem when anything does not read, or when the counts differ from `expected`.
  """
  origin = origin or directory
  try:
    layout = layouts.detect_layout(directory, layouts.list_files(directory))
  except layouts.LayoutError as error:
    raise FetchError(str(error)) from None
  counts, ids, unknown = {}, {}, {'movies': set(), 'users': set()}
  keys = {'movies': 'movie_id', 'users': 'user_id'}
  for role in ('movies', 'users', 'ratings'):
    table = layout.tables().get(role)
    if table is None:
      continue
    ids[role], counts[role], bad = set(), 0, []
    for number, record, reason in layouts.iterate_table(
        os.path.join(directory, table.file_name), table):
      if reason is not None:
        bad.append((number, reason))
        continue
      counts[role] += 1
      if role in keys:
        ids[role].add(record[keys[role]])
        continue
      for other, key in keys.items():
        if other in ids and record[key] not in ids[other]:
          unknown[other].add(record[key])
    if bad:
      line, reason = bad[0]
      raise FetchError(f'{table.file_name} from {origin}, line {line}: {reason} '
                       f'({len(bad)} bad lines in all)')
  for role, missing in unknown.items():
    if missing:
      raise FetchError(f'{origin}: ratings name {len(missing)} {role} missing from '
                       f'{layout.tables()[role].file_name}, e.g. {sorted(missing)[:3]}')
  if expected is not None and counts != dict(expected):
    raise FetchError(f'{origin} holds {counts}, not the expected {expected}')
  return {'layout': layout.name,
          'rows': {role: counts[role] for role in ('ratings', 'movies', 'users')
                   if role in counts},
          'sha256': {t.file_name: sha256_file(os.path.join(directory, t.file_name))
                     for t in layout.tables().values()}}


# ---------------------------------------------------------------------------------------
# Sources: each writes the release's files into a directory, or raises FetchError.

Writer = Callable[[str], None]


MAX_EXTRACTED_BYTES = 4 << 30  # MovieLens 25M's files hold 1.1 GB: more is not MovieLens


def _unsafe(info: zipfile.ZipInfo) -> bool:
  """An entry that would land outside its folder if extracted by its own path: absolute,
  with a `..` component, or a symbolic link."""
  parts = info.filename.replace('\\', '/').split('/')
  is_link = stat.S_ISLNK(info.external_attr >> 16)
  return info.filename.startswith(('/', '\\')) or ':' in parts[0] or '..' in parts or is_link


def _extract(archive: str, release: Release, origin: str, dest: str) -> None:
  """Extracts the MovieLens files of a GroupLens zip into dest, by name only. An archive
  with an entry that points outside its folder, two files of the same name, or more data
  than any release is refused before anything is written."""
  wanted = {table.file_name for layout in layouts.LAYOUTS.values()
            for table in layout.tables().values()}
  try:
    with zipfile.ZipFile(archive) as zipped:
      entries = zipped.infolist()
      unsafe = [info.filename for info in entries if _unsafe(info)]
      if unsafe:
        raise FetchError(f'refusing {origin}: its entries {unsafe[:3]} point outside its '
                         'folder (absolute paths, .. or links); a GroupLens zip has none')
      members = [info for info in entries
                 if not info.is_dir() and os.path.basename(info.filename) in wanted]
      names = [os.path.basename(info.filename) for info in members]
      if not members:
        raise FetchError(f'{origin} holds no MovieLens file ({", ".join(sorted(wanted))})')
      if len(set(names)) != len(names):
        raise FetchError(f'refusing {origin}: it holds several files named '
                         f'{sorted({n for n in names if names.count(n) > 1})}')
      size = sum(info.file_size for info in members)
      if size > MAX_EXTRACTED_BYTES:
        raise FetchError(f'refusing {origin}: its MovieLens files would unpack to '
                         f'{size / 2**30:.1f} GiB, more than any release '
                         f'({MAX_EXTRACTED_BYTES / 2**30:.0f} GiB)')
      for name, info in zip(names, members):
        with zipped.open(info) as source, open(os.path.join(dest, name), 'wb') as target:
          shutil.copyfileobj(source, target, 1 << 22)
  except (zipfile.BadZipFile, zlib.error, EOFError) as error:
    raise FetchError(f'{origin} is not a readable zip ({error})') from None


def from_grouplens(release: Release, timeout: float = 30) -> Writer:
  def write(dest: str) -> None:
    archive = os.path.join(dest, '.download.zip')
    digest = hashlib.sha256()
    try:
      with urllib.request.urlopen(release.url, timeout=timeout) as response, \
          open(archive, 'wb') as file:
        for block in iter(lambda: response.read(1 << 22), b''):
          digest.update(block)
          file.write(block)
    except OSError as error:
      raise FetchError(f'GroupLens is unreachable ({error})') from None
    if digest.hexdigest() != release.zip_sha256:
      raise FetchError(f'{release.url} does not have the SHA-256 registered for '
                       f'{release.folder}.zip ({release.zip_sha256}): GroupLens changed the '
                       'file, or the download was damaged')
    _extract(archive, release, release.url, dest)
    os.remove(archive)
  return write


def from_pypi(release: Release) -> Writer:
  """The three MovieLens 100k files inside the recbole wheel, downloaded without installing."""
  if release.name != '100k':
    raise FetchError(f'PyPI holds MovieLens 100k only, not {release.title}')

  def write(dest: str) -> None:
    with tempfile.TemporaryDirectory() as download:
      command = [sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps',
                 '--only-binary=:all:', RECBOLE_WHEEL, '--dest', download]
      result = subprocess.run(command, capture_output=True, text=True, timeout=600)
      wheels = [n for n in os.listdir(download) if n.endswith('.whl')]
      if result.returncode != 0 or not wheels:
        raise FetchError(f'pip could not download {RECBOLE_WHEEL}: '
                         f'{result.stderr.strip()[-500:]}')
      with zipfile.ZipFile(os.path.join(download, wheels[0])) as wheel:
        for name, digest in RECBOLE_SHA256.items():
          content = wheel.read(RECBOLE_DIR + name)
          if hashlib.sha256(content).hexdigest() != digest:
            raise FetchError(f'{name} in {RECBOLE_WHEEL} does not have the expected SHA-256')
          with open(os.path.join(dest, name), 'wb') as file:
            file.write(content)
  return write


def from_local(path: str, release: Release) -> Writer:
  """The files of a release's directory or zip that the user already has."""
  path = os.path.expanduser(path)

  def write(dest: str) -> None:
    if os.path.isfile(path):
      _extract(path, release, path, dest)
      return
    try:
      layout = layouts.detect_layout(path, layouts.list_files(path))
    except layouts.LayoutError as error:
      raise FetchError(str(error)) from None
    for table in layout.tables().values():
      shutil.copyfile(os.path.join(path, table.file_name), os.path.join(dest, table.file_name))
  return write


def from_tfds(data_dir: str, release: Release) -> Writer:
  """A MovieLens that TensorFlow Datasets prepared in data_dir, in the release's layout."""
  def write(dest: str) -> None:
    try:
      tfds_source.write_release(os.path.expanduser(data_dir), release.tfds_config, dest)
    except tfds_source.NotPreparedError as error:
      raise FetchError(str(error)) from None
  return write


# ---------------------------------------------------------------------------------------


def _install(write: Writer, dest: str, origin: str, release: Release) -> Dict[str, object]:
  """Writes the files into a fresh staging directory, verifies them, then moves them to dest."""
  parent = os.path.dirname(os.path.abspath(dest))
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix='.fetch-', dir=parent)
  os.chmod(staging, 0o755)
  try:
    write(staging)
    manifest = {'source': origin, 'release': release.name,
                **verify(staging, release.rows, origin)}
    with open(os.path.join(staging, names.SOURCE_MANIFEST), 'w') as file:
      json.dump(manifest, file, indent=2)
    if os.path.exists(dest):
      shutil.rmtree(dest)
    os.replace(staging, dest)
    return manifest
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def existing(dest: str) -> Optional[Dict[str, object]]:
  """The manifest of an earlier fetch into dest if its files are still as fetched."""
  try:
    with open(os.path.join(dest, names.SOURCE_MANIFEST)) as file:
      manifest = json.load(file)
    unchanged = all(sha256_file(os.path.join(dest, name)) == digest
                    for name, digest in manifest['sha256'].items())
  except (OSError, ValueError, KeyError):
    return None
  return manifest if unchanged else None


def _tfds_prepared(data_dir: str, release: Release) -> bool:
  return tfds_source.find_prepared(os.path.expanduser(data_dir),
                                   f'{release.tfds_config}-ratings') is not None


def fetch(dest: Optional[str] = None, source: str = 'auto', force: bool = False,
          say=print, release: str = DEFAULT_RELEASE) -> Dict[str, object]:
  """Makes sure dest holds the verified release; returns its manifest."""
  if release not in RELEASES:
    raise FetchError(f'unknown release {release!r}; choose one of {", ".join(RELEASES)}')
  chosen = RELEASES[release]
  dest = dest or default_dest(release)
  manifest = None if force else existing(dest)
  if manifest:
    say(f'{chosen.title} is already in {dest} (from {manifest["source"]}; verified).')
    return manifest

  candidates = []  # (what to say, origin, writer)
  if source == 'auto':
    if os.path.isdir(os.path.expanduser(DEFAULT_TFDS_DIR)) and _tfds_prepared(
        DEFAULT_TFDS_DIR, chosen):
      candidates.append(_tfds_candidate(DEFAULT_TFDS_DIR, chosen))
    candidates.append(_grouplens_candidate(chosen))
    if chosen.name == '100k':
      candidates.append(_pypi_candidate(chosen))
  elif source == 'grouplens':
    candidates.append(_grouplens_candidate(chosen))
  elif source == 'pypi':
    candidates.append(_pypi_candidate(chosen))
  elif source == 'tfds' or source.startswith('tfds:'):
    candidates.append(_tfds_candidate(source[5:] or DEFAULT_TFDS_DIR, chosen))
  else:
    origin = os.path.abspath(os.path.expanduser(source))
    candidates.append((f'Copying {chosen.title} from {source} ...', origin,
                       from_local(source, chosen)))

  failures = []
  for index, (announce, origin, write) in enumerate(candidates):
    say(announce)
    try:
      manifest = _install(write, dest, origin, chosen)
      break
    except FetchError as error:
      failures.append(str(error))
      if index + 1 == len(candidates):
        if len(failures) > 1:
          raise FetchError('no source worked:\n  ' + '\n  '.join(failures)) from None
        raise
      say(f'  {error}; trying the next source.')
  rows = manifest['rows']
  say(f'{chosen.title} from {manifest["source"]}: verified '
      + ', '.join(f'{count:,} {role}' for role, count in rows.items())
      + f' ({manifest["layout"]} layout) in {dest}.')
  return manifest


def _grouplens_candidate(release: Release):
  return (f'Fetching {release.title} from GroupLens ({release.url}) ...',
          f'GroupLens ({release.url})', from_grouplens(release))


def _pypi_candidate(release: Release):
  return (f'Fetching {release.title} from the copy inside {RECBOLE_WHEEL} on PyPI ...',
          f'PyPI: the MovieLens 100k copy inside {RECBOLE_WHEEL}', from_pypi(release))


def _tfds_candidate(data_dir: str, release: Release):
  name = f'movielens/{release.tfds_config}-ratings'
  return (f'Reading {release.title} prepared by TensorFlow Datasets ({name} in {data_dir}) ...',
          f'TensorFlow Datasets ({name} in {os.path.abspath(os.path.expanduser(data_dir))})',
          from_tfds(data_dir, release))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m data.fetch', description=__doc__.split('\n')[0],
      formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n', 2)[2])
  parser.add_argument('--release', default=DEFAULT_RELEASE, choices=sorted(RELEASES),
                      help='which MovieLens (default: %(default)s)')
  parser.add_argument('--dest', help='directory to store it in '
                      '(default: data/movielens/ml-RELEASE)')
  parser.add_argument('--source', default='auto',
                      help="'auto', 'tfds' or 'tfds:DATA_DIR', 'grouplens', 'pypi' (100k), or "
                      "a local directory or zip of the release (default: %(default)s)")
  parser.add_argument('--force', action='store_true',
                      help='fetch again even if dest already holds verified data')
  args = parser.parse_args(argv)
  try:
    fetch(args.dest, args.source, args.force, release=args.release)
  except FetchError as error:
    print(f'error: {error}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
