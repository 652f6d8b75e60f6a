"""Damaged artifacts are found before TFX's cache reuses them.

TFX's cache reuses a component's outputs from ML Metadata without looking at their files:
an artifact whose files were deleted or truncated since would be fed to the components
downstream, which fail far from the cause (a TFRecord "corrupted record", a missing
SavedModel) or, worse, read less data than was written. So after every local run each new
artifact's files and sizes are written down (a manifest beside ML Metadata), and before a
run that may reuse them every manifest is checked. A damaged artifact is marked DELETED in
ML Metadata, which TFX's cache never reuses (tfx/orchestration/portable/cache_utils.py),
and the run stops with a message naming it: running the same command again recomputes it
and what depends on it, and reuses the rest.
"""
import dataclasses
import json
import os
from typing import Dict, List

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import metadata

MANIFESTS_DIR = 'artifact_manifests'  # beside the ML Metadata file, one JSON per artifact


class DamagedArtifactsError(RuntimeError):
  """Cached artifacts whose files changed since they were written; the message says which."""


@dataclasses.dataclass
class Damage:
  component: str
  key: str
  artifact_id: int
  uri: str
  problems: List[str]  # one line per missing or resized file


def _files(uri: str) -> Dict[str, int]:
  """Every file under an artifact's URI (or the file itself) with its size in bytes."""
  if os.path.isfile(uri):
    return {'': os.path.getsize(uri)}
  sizes = {}
  for directory, _, names in os.walk(uri):
    for name in names:
      path = os.path.join(directory, name)
      sizes[os.path.relpath(path, uri)] = os.path.getsize(path)
  return sizes


def _produced(store: metadata_store.MetadataStore, pipeline_name: str) -> List[metadata.Output]:
  """Every artifact the pipeline's executions produced (not those they reused), once."""
  seen, outputs = set(), []
  for run in metadata.runs(store, pipeline_name):
    for output in metadata.run_outputs(store, pipeline_name, run):
      if output.state == 'COMPLETE' and output.id not in seen:
        seen.add(output.id)
        outputs.append(output)
  return outputs


def record(metadata_path: str, pipeline_name: str) -> int:
  """Writes the manifest of every live artifact that has none yet; returns how many."""
  if not os.path.exists(metadata_path):
    return 0
  directory = os.path.join(os.path.dirname(metadata_path), MANIFESTS_DIR)
  os.makedirs(directory, exist_ok=True)
  store = metadata.connect(metadata_path)
  outputs = _produced(store, pipeline_name)
  live = {a.id for a in store.get_artifacts_by_id([o.id for o in outputs])
          if a.state == metadata_store_pb2.Artifact.LIVE}
  written = 0
  for output in outputs:
    path = os.path.join(directory, f'{output.id}.json')
    if output.id in live and not os.path.exists(path) and os.path.exists(output.uri):
      with open(path + '.tmp', 'w') as file:
        json.dump({'component': output.component, 'key': output.key, 'uri': output.uri,
                   'files': _files(output.uri)}, file)
      os.replace(path + '.tmp', path)
      written += 1
  return written


def damage(manifest: Dict) -> List[str]:
  """What changed in an artifact's files since its manifest was written."""
  if not manifest['files']:  # an empty artifact (a model not pushed): nothing to lose
    return []
  now = _files(manifest['uri']) if os.path.exists(manifest['uri']) else {}
  if not now:
    return [f'{manifest["uri"]} is gone']
  problems = []
  for name, size in sorted(manifest['files'].items()):
    shown = os.path.join(manifest['uri'], name) if name else manifest['uri']
    if name not in now:
      problems.append(f'{shown} is missing')
    elif now[name] != size:
      problems.append(f'{shown} is {now[name]:,} bytes, {size:,} when written')
  return problems


def check(metadata_path: str) -> List[Damage]:
  """Finds live artifacts whose files changed since written and marks them DELETED in ML
  Metadata, so that TFX's cache recomputes them; returns what was found."""
  directory = os.path.join(os.path.dirname(metadata_path), MANIFESTS_DIR)
  if not os.path.isdir(directory) or not os.path.exists(metadata_path):
    return []
  manifests = {}
  for name in os.listdir(directory):
    if name.endswith('.json'):
      with open(os.path.join(directory, name)) as file:
        manifests[int(name[:-len('.json')])] = json.load(file)
  store = metadata.connect(metadata_path, writable=True)
  found, damaged = [], []
  for artifact in store.get_artifacts_by_id(list(manifests)):
    if artifact.state != metadata_store_pb2.Artifact.LIVE:
      continue
    manifest = manifests[artifact.id]
    problems = damage(manifest)
    if problems:
      artifact.state = metadata_store_pb2.Artifact.DELETED
      damaged.append(artifact)
      found.append(Damage(manifest['component'], manifest['key'], artifact.id,
                          manifest['uri'], problems))
  if damaged:
    store.put_artifacts(damaged)
  return found


def explain(found: List[Damage]) -> str:
  lines = [f'{len(found)} cached artifact{"s" if len(found) > 1 else ""} of earlier runs '
           'changed on disk since written, so they cannot be reused:']
  for item in found:
    lines.append(f'  {item.component}.{item.key} (artifact {item.artifact_id}) at {item.uri}:')
    lines.extend(f'    {problem}' for problem in item.problems[:5])
    if len(item.problems) > 5:
      lines.append(f'    ... and {len(item.problems) - 5} more files')
  lines.append('They are now marked deleted in ML Metadata: run the same command again to '
               'recompute them (and what was computed from them), reusing everything else; '
               'or run with --no-cache to recompute everything.')
  return '\n'.join(lines)
