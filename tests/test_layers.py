"""The project's imports run one way: each layer imports only the layers below it.

    shared (names, env: imports nothing of the project)
      data -> modules -> components -> pipeline -> runners, inspector, tools, bench

Every import counts, a function's own included: a lazy import cannot hide an upward edge
or a cycle. The walk reads the source (ast), so it needs neither TensorFlow nor TFX.
"""
import ast
import os
import pathlib
import shutil
from typing import Dict, List, Tuple

import pytest

from pipeline import fingerprint
from shared import names

ROOT = pathlib.Path(names.REPO_ROOT)
# A package's rank; a module may import a package of a lower rank, its own, and `shared`.
LAYERS = {'shared': -1, 'data': 0, 'modules': 1, 'components': 2, 'pipeline': 3,
          'runner_local': 4, 'runner_kubeflow': 4, 'inspector': 4, 'tools': 4, 'bench': 4}
SKIPPED = {'__pycache__', 'movielens', 'templates'}


def project_modules(root: pathlib.Path) -> Dict[str, pathlib.Path]:
  """Dotted module name -> file, for every Python file of the layers (tests aside)."""
  found = {}
  paths = [p for name in LAYERS for p in (root / name).rglob('*.py')]
  paths += [root / f'{name}.py' for name in LAYERS if (root / f'{name}.py').exists()]
  for path in paths:
    parts = path.relative_to(root).parts
    if SKIPPED & set(parts):
      continue
    dotted = '.'.join(parts).removesuffix('.py').removesuffix('.__init__')
    found[dotted] = path
  return found


def import_graph(root: pathlib.Path) -> Dict[str, List[Tuple[str, int]]]:
  modules = project_modules(root)
  return {dotted: sorted(set(fingerprint.imported_modules(str(path), dotted, str(root))))
          for dotted, path in modules.items()}


def upward_imports(root: pathlib.Path) -> List[str]:
  """Each import of a layer that is not below the importer's, as 'file:line: a imports b'."""
  graph, modules = import_graph(root), project_modules(root)
  deepest: Dict[Tuple[str, int], str] = {}  # `import a.b.c` also names a and a.b: one line
  for source, targets in graph.items():
    for target, line in targets:
      a, b = source.split('.')[0], target.split('.')[0]
      if a != b and b != 'shared' and (a == 'shared' or LAYERS[b] >= LAYERS[a]):
        deepest[source, line] = max(deepest.get((source, line), ''), target, key=len)
  return [f'{modules[source].relative_to(root)}:{line}: {source.split(".")[0]} imports '
          f'{target.split(".")[0]} ({target}), a layer that is not below it'
          for (source, line), target in sorted(deepest.items())]


def import_cycles(root: pathlib.Path) -> List[List[str]]:
  """Groups of modules that import each other, directly or round a loop (Tarjan's SCC).

  A package's __init__ importing its own modules is not a loop of the design."""
  graph = {source: sorted({t for t, _ in targets if t != source
                           and not source.startswith(t + '.')})
           for source, targets in import_graph(root).items()}
  index, low, stack, on_stack, cycles = {}, {}, [], set(), []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for target in graph.get(node, ()):
      if target not in index:
        visit(target)
        low[node] = min(low[node], low[target])
      elif target in on_stack:
        low[node] = min(low[node], index[target])
    if low[node] == index[node]:
      group = []
      while True:
        member = stack.pop()
        on_stack.discard(member)
        group.append(member)
        if member == node:
          break
      if len(group) > 1:
        cycles.append(sorted(group))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return cycles


def test_every_import_goes_down_a_layer():
  assert upward_imports(ROOT) == []


def test_no_module_imports_itself_round_a_loop():
  assert import_cycles(ROOT) == []


@pytest.fixture
def tree_copy(tmp_path):
  """The layers' sources, copied, to plant imports in."""
  for name in LAYERS:
    source = ROOT / name
    if source.is_dir():
      shutil.copytree(source, tmp_path / name,
                      ignore=shutil.ignore_patterns('__pycache__', 'movielens'))
    elif (ROOT / f'{name}.py').exists():
      shutil.copy(ROOT / f'{name}.py', tmp_path / f'{name}.py')
  return tmp_path


def test_a_planted_upward_import_inside_a_function_is_found(tree_copy):
  with open(tree_copy / 'modules' / 'model.py', 'a') as file:
    file.write('\n\ndef planted():\n  from pipeline import configs  # noqa\n')
  problems = upward_imports(tree_copy)
  assert len(problems) == 1 and 'modules/model.py' in problems[0]
  assert 'modules imports pipeline' in problems[0]


def test_a_planted_cycle_is_found(tree_copy):
  (tree_copy / 'data' / 'planted_a.py').write_text('from data import planted_b\n')
  (tree_copy / 'data' / 'planted_b.py').write_text('import data.planted_a\n')
  assert import_cycles(tree_copy) == [['data.planted_a', 'data.planted_b']]


def test_the_shared_leaf_imports_nothing_of_the_project(tree_copy):
  with open(tree_copy / 'shared' / 'names.py', 'a') as file:
    file.write('\nfrom data import features  # noqa\n')
  assert any('shared imports data (data.features)' in p for p in upward_imports(tree_copy))


def sets_environment(path: pathlib.Path) -> bool:
  """Whether the module calls use_legacy_keras() or sets TF_USE_LEGACY_KERAS itself."""
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Call):
      name = getattr(node.func, 'attr', getattr(node.func, 'id', ''))
      first = node.args[0] if node.args else None
      if name == 'use_legacy_keras' or (
          name in ('setdefault', 'putenv', '__setitem__') and isinstance(first, ast.Constant)
          and first.value == 'TF_USE_LEGACY_KERAS'):
        return True
  return False


ENTRY_POINTS = ('runner_local', 'runner_kubeflow', 'inspector.__main__')


def test_importing_the_project_does_not_change_the_environment():
  """TF_USE_LEGACY_KERAS is the entry points' to set (shared/env.py), not a package's."""
  quiet = [dotted for dotted, path in project_modules(ROOT).items()
           if dotted.split('.')[0] in ('data', 'modules', 'components', 'pipeline')
           or dotted in ('inspector', 'inspector.queries', 'inspector.report')]
  assert [d for d in quiet if sets_environment(project_modules(ROOT)[d])] == []
  assert all(sets_environment(project_modules(ROOT)[d]) for d in ENTRY_POINTS)
