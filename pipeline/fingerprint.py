"""A fingerprint of the code a component runs: its modules and every project module they
import, found by reading the imports (not by a list kept by hand).

TFX's cache keys on a component's inputs and settings; with module paths (not module files)
that leaves out the code itself, so each component that runs this project's code carries
this fingerprint among its settings: editing that code, or anything it imports from the
project, reruns the component and those downstream instead of reusing stale results.
"""
import ast
import hashlib
import os
from typing import Iterable, Iterator, List, Optional, Set, Tuple

from shared import names



def _file_of(module: str, root: str) -> Optional[str]:
  """The source file of a dotted module name under root (a package's __init__.py), if any."""
  base = os.path.join(root, *module.split('.'))
  for path in (base + '.py', os.path.join(base, '__init__.py')):
    if os.path.isfile(path):
      return path
  return None


def imported_modules(path: str, module: str, root: str) -> Iterator[Tuple[str, int]]:
  """The project modules a source file imports, anywhere in it (a function's own imports
  included; absolute and relative), each with the line that imports it.

  Args:
    path: the source file.
    module: its dotted module name (a package's for an __init__.py).
    root: the directory the project's modules are found under.

  Returns:
    (dotted module name, line number) pairs; a dotted import yields every package on the
    way (importing a.b.c runs a and a.b first).
  """
  package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
  with open(path, 'rb') as file:
    tree = ast.parse(file.read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        parent = package.split('.')[:len(package.split('.')) - node.level + 1]
        base = '.'.join(parent + ([base] if base else []))
      # `from package import module` names a module; `from module import name` does not.
      names = [base] + [f'{base}.{alias.name}' for alias in node.names]
    else:
      continue
    for name in names:
      parts = name.split('.')
      for end in range(1, len(parts) + 1):  # a dotted import runs every package on the way
        if _file_of('.'.join(parts[:end]), root):
          yield '.'.join(parts[:end]), node.lineno


def project_sources(modules: Iterable[str], root: str = names.REPO_ROOT) -> List[str]:
  """The source files of `modules` and of every project module they import, transitively."""
  seen: Set[str] = set()
  # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
  pending = [module.rsplit('.', depth)[0] for module in modules
             for depth in range(module.count('.') + 1)]
  files = set()
  while pending:
    module = pending.pop()
    if module in seen:
      continue
    seen.add(module)
    path = _file_of(module, root)
    if path is None:
      raise ValueError(f'{module} is not a module of {root}')
    files.add(path)
    pending.extend(name for name, _ in imported_modules(path, module, root))
  return sorted(files)


def source_fingerprint(*modules: str, root: str = names.REPO_ROOT) -> str:
  """A hash of the source of `modules` (dotted names) and of what they import from here."""
  digest = hashlib.sha256()
  for path in project_sources(modules, root):
    with open(path, 'rb') as file:
      digest.update(os.path.relpath(path, root).encode() + b'\0' + file.read())
  return digest.hexdigest()[:16]
