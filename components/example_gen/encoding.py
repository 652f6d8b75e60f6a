"""Records to serialized tf.Examples: Arrow columns encoded by tfx_bsl's C++ encoder.

A record is what `data.layouts` reads a line into: feature name to a str (a bytes feature), an
int (int64), a float (float) or a list of ints (int64, any length). The encoder wants every
column as a list array, so a scalar becomes a list of one value, as tf.Example holds it.

Ratings are joined to their movie's and user's features by row: a `Lookup` holds a movies or
users file as Arrow columns with the row of each id, and `joined_examples` takes the rows of a
block's ratings from it (Arrow's take, in C++) beside the ratings' own columns. No Python
work per feature of the movie or user is left on the path of a rating.
"""
import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
from tfx_bsl.coders import example_coder

Record = Dict[str, object]

# Arrow type of the values of a record's Python type: the tf.Example kind they become.
_VALUE_TYPES = {str: pa.binary(), int: pa.int64(), float: pa.float32(), list: pa.int64()}

_ENCODER = example_coder.RecordBatchToExamplesEncoder()


def _column(values: list, kind: type) -> pa.Array:
  """A list array of one feature's values (lists as they are, a scalar as a list of one)."""
  value_type = _VALUE_TYPES[kind]
  if kind is list:
    return pa.array(values, pa.list_(value_type))
  offsets = pa.array(np.arange(len(values) + 1, dtype=np.int32))
  return pa.ListArray.from_arrays(offsets, pa.array(values, value_type))


def record_batch(records: Sequence[Record], names: Sequence[str] = ()) -> pa.RecordBatch:
  """The records as an Arrow record batch, one list column per feature.

  Args:
    records: records of one table: the same feature names, each with values of one type.
    names: the features to take, in this order; all of the first record's by default.

  Returns:
    A record batch of len(records) rows, whose columns `encode` turns into features.
  """
  names = list(names or (records[0] if records else ()))
  kinds = {name: type(records[0][name]) for name in names} if records else {}
  return pa.RecordBatch.from_arrays(
      [_column([record[name] for record in records], kinds[name]) for name in names], names)


def encode(batch: pa.RecordBatch) -> List[bytes]:
  """The serialized tf.Examples of a record batch's rows (tfx_bsl's encoder).

  Args:
    batch: list columns of int64, float32 or binary values, named by feature.

  Returns:
    One serialized tf.Example a row, with one feature a column.
  """
  return _ENCODER.encode(batch)


def examples(records: Sequence[Record]) -> List[bytes]:
  """The serialized tf.Examples of records of one table.

  Args:
    records: records with the same feature names (as `record_batch` takes them).

  Returns:
    One serialized tf.Example a record: str as bytes, int as int64, float as float and a
    list of ints as int64 values.
  """
  return encode(record_batch(records)) if records else []


@dataclasses.dataclass(frozen=True)
class Lookup:
  """The features of a movies or users file, by id, for joining to ratings by row.

  Attributes:
    rows: each id's row in `columns`.
    columns: the features of every id but the id itself, which the rating already has.
  """
  rows: Dict[str, int]
  columns: pa.RecordBatch

  @classmethod
  def of(cls, keyed: Sequence[Tuple[str, Record]], id_name: str) -> 'Lookup':
    """The lookup of (id, record) pairs, each id once.

    Args:
      keyed: the unique records of a movies or users file, with their ids.
      id_name: the id's feature name, left out of the columns.

    Returns:
      A Lookup whose `rows` give each id's row of `columns`.
    """
    records = [record for _, record in keyed]
    names = [name for name in (records[0] if records else ()) if name != id_name]
    return cls({key: row for row, (key, _) in enumerate(keyed)}, record_batch(records, names))


def joined_examples(ratings: Sequence[Record],
                    joins: Sequence[Tuple[Optional[Lookup], Sequence[int]]]) -> List[bytes]:
  """The serialized tf.Examples of ratings joined with the features of their movie and user.

  Args:
    ratings: rating records, all with the same features.
    joins: (lookup, the row of each rating in it) per joined file; a None lookup (a release
      without a users file) adds nothing.

  Returns:
    One serialized tf.Example a rating, with the rating's features and those of its rows.
  """
  if not ratings:
    return []
  batch = record_batch(ratings)
  arrays, names = list(batch.columns), list(batch.schema.names)
  for lookup, rows in joins:
    if lookup is not None:
      taken = lookup.columns.take(pa.array(rows, pa.int64()))
      arrays += taken.columns
      names += taken.schema.names
  return encode(pa.RecordBatch.from_arrays(arrays, names))
