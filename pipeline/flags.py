"""Command-line flags of the configuration's sections (pipeline/configs.py).

A section is a dataclass whose fields are declared with `setting`: the field's default is
the setting's only default. Each field becomes one `--kebab-case` flag in the section's
--help group, its help text ending in the default it stands for. A flag not given parses as
None, so reading a section back (`read_section`) leaves the dataclass its own default:
argparse keeps no copy of it. `Flag` rows describe the same flags to docs/configuration.md
(tools/config_doc.py).
"""
import argparse
import dataclasses
import shlex
from typing import Any, Dict, List, Optional, Sequence, Union, get_args, get_origin


def setting(default: Any, help_text: str, flag: str = '', shown: str = ''):
  """A section's field.

  Args:
    default: the setting's default; a list is copied for each instance.
    help_text: the flag's help text, without the default.
    flag: the flag's name when it is not the field's (`trials` of Tuning is --tune-trials).
    shown: how --help and the docs show the default, when the value itself does not say
      it (an empty path that stands for one under the output directory).

  Returns:
    The dataclasses.field.
  """
  metadata = {'help': help_text, 'flag': flag, 'shown': shown}
  if isinstance(default, (list, tuple)):
    return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
  return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Flag:
  """One flag: its name, the field it sets, how it parses, its default and help as shown
  (`literal`: the default is a value, as a flag would be given, not words about one)."""
  name: str
  field: str
  kind: Any
  default: str
  help: str
  literal: bool = True


def flag_name(field: dataclasses.Field) -> str:
  """A field's flag: --kebab-case of its name, or of the name `setting` gave it."""
  return '--' + (field.metadata.get('flag') or field.name).replace('_', '-')


def show(value: Any) -> str:
  """A value as a flag would be written: on/off, sizes as 64,32, arguments shell-quoted."""
  if isinstance(value, bool):
    return 'on' if value else 'off'
  if isinstance(value, (list, tuple)):
    if value and all(isinstance(item, int) for item in value):
      return ','.join(str(item) for item in value)
    return shlex.join(value) if value else 'none'
  return str(value)


def _int_list(text: str) -> List[int]:
  try:
    return [int(size) for size in text.split(',')]
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected sizes like 64,32, not {text!r}') from None


def _parser_of(kind: Any):
  """The argparse type of a field's annotation (Optional[X] parses as X)."""
  if get_origin(kind) is Union:
    kind = next(arg for arg in get_args(kind) if arg is not type(None))
  if get_origin(kind) in (list, List):
    return _int_list if get_args(kind) == (int,) else shlex.split
  return kind


def flags_of(section: type, shown: Optional[Dict[str, str]] = None) -> List[Flag]:
  """The flags of a section's fields.

  Args:
    section: the section's dataclass.
    shown: the defaults to show instead of the fields' own, by field name (the training
      flags show the preset's value).

  Returns:
    One Flag per field, in the order of the fields.
  """
  rows = []
  for field in dataclasses.fields(section):
    words = (shown or {}).get(field.name) or field.metadata['shown']
    value = (field.default_factory() if field.default_factory is not dataclasses.MISSING
             else field.default)
    rows.append(Flag(flag_name(field), field.name, field.type, words or show(value),
                     field.metadata['help'], literal=not words))
  return rows


def add_group(parser: argparse.ArgumentParser, title: str, description: str,
              flags: Sequence[Flag]) -> None:
  """Adds one --help group of flags, each not given parsing as None.

  Args:
    parser: the runner's parser.
    title: the group's title (the section's name).
    description: what the section configures.
    flags: its flags (`flags_of`).
  """
  group = parser.add_argument_group(title, description)
  for flag in flags:
    text = f'{flag.help} (default: {flag.default})'.replace('%', '%%')
    if flag.kind is bool:
      group.add_argument(flag.name, dest=flag.field, action=argparse.BooleanOptionalAction,
                         default=None, help=text)
    else:
      group.add_argument(flag.name, dest=flag.field, type=_parser_of(flag.kind), default=None,
                         metavar=flag.name[2:].replace('-', '_').upper(), help=text)


def given(args: argparse.Namespace, flags: Sequence[Flag]) -> Dict[str, Any]:
  """The values of the flags that were given.

  Args:
    args: what the runner's parser parsed.
    flags: the flags to read.

  Returns:
    {field name: value} of those given on the command line.
  """
  return {flag.field: getattr(args, flag.field) for flag in flags
          if getattr(args, flag.field) is not None}


def read_section(section: type, args: argparse.Namespace):
  """A section from parsed flags.

  Args:
    section: the section's dataclass.
    args: what the runner's parser parsed.

  Returns:
    The section: the flags given, the dataclass's defaults for the rest.
  """
  return section(**given(args, flags_of(section)))


def _cell(text: str) -> str:
  return text.replace('|', '\\|')


def markdown_table(flags: Sequence[Flag]) -> str:
  """The flags as a Markdown table.

  Args:
    flags: one section's flags.

  Returns:
    The table: flag, default, what it does.
  """
  lines = ['| flag | default | |', '| --- | --- | --- |']
  for flag in flags:
    name = f'`{flag.name}` / `--no-{flag.name[2:]}`' if flag.kind is bool else f'`{flag.name}`'
    default = f'`{flag.default}`' if flag.literal else _cell(flag.default)
    lines.append(f'| {name} | {default} | {_cell(flag.help)} |')
  return '\n'.join(lines)
