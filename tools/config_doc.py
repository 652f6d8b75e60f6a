"""Writes the flag tables of docs/configuration.md from the configuration's sections.

    python -m tools.config_doc             # rewrites the tables between the markers
    python -m tools.config_doc --check     # exit 1 if they differ from the flags

The tables are the runners' --help groups (pipeline/configs.py): one per section, then
each runner's own. The prose around the markers is the page's own.
"""
import argparse
import os
import sys
from typing import Optional, Sequence

from pipeline import configs, flags
from shared import names

PAGE = os.path.join(names.REPO_ROOT, 'docs', 'configuration.md')
BEGIN = ('<!-- BEGIN flag tables: written by `python -m tools.config_doc` from '
         'pipeline/configs.py; do not edit by hand -->')
END = '<!-- END flag tables -->'
RUNNER_NOTES = {configs.LocalConfig: 'runner_local.py only',
                configs.KubeflowConfig: 'runner_kubeflow.py only'}


def tables() -> str:
  """The Markdown of every section's flags: the common ones, then each runner's own."""
  common = configs.groups(configs.LocalConfig)[:-1]
  parts = []
  for title, description, section_flags in common:
    parts.append(f'## {title}\n\n{description}\n\n{flags.markdown_table(section_flags)}')
  for runner, note in RUNNER_NOTES.items():
    title, description, section_flags = configs.groups(runner)[-1]
    parts.append(f'## {title} ({note})\n\n{description}\n\n'
                 f'{flags.markdown_table(section_flags)}')
  return '\n\n'.join(parts)


def updated(page: str) -> str:
  """The page with the text between its markers replaced by `tables()`."""
  if BEGIN not in page or END not in page:
    raise ValueError(f'the page has no markers {BEGIN!r} ... {END!r}')
  before, rest = page.split(BEGIN, 1)
  after = rest.split(END, 1)[1]
  return f'{before}{BEGIN}\n{tables()}\n{END}{after}'


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Rewrites docs/configuration.md's tables, or with --check compares them.

  Args:
    argv: the flags (default: sys.argv's).

  Returns:
    The exit code: 1 when --check finds the page out of date.
  """
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--check', action='store_true',
                      help='only compare; exit 1 if the page differs from the flags')
  args = parser.parse_args(argv)
  with open(PAGE) as file:
    page = file.read()
  new = updated(page)
  if args.check:
    if new != page:
      print(f'{PAGE} is out of date: run python -m tools.config_doc', file=sys.stderr)
      return 1
    return 0
  with open(PAGE, 'w') as file:
    file.write(new)
  return 0


if __name__ == '__main__':
  sys.exit(main())
