"""Files of records: plain values written with :mod:`marshal`, each after its length, and
None for the end, so that a file cut short is not taken for a whole one. Written and read a
record at a time, never whole: the parse cache and the incremental build's state hold a
million articles' worth, and marshalled whole they made transient copies of 400 MB."""

from __future__ import annotations

import itertools
import marshal
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

_LENGTH = struct.Struct("<Q")
_T = TypeVar("_T")


def dump(values: Iterable[Any]) -> Iterator[bytes]:
    """The bytes of a file of ``values`` (none of them None), in parts, as they are made."""
    for value in itertools.chain(values, [None]):
        data = marshal.dumps(value)
        yield _LENGTH.pack(len(data))
        yield data


def read(path: Path) -> Iterator[Any]:
    """The values of the file at ``path``, read one at a time; EOFError if it ends before
    the last (OSError if it cannot be read, ValueError if a record is not marshal's)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        while True:
            head = f.read(_LENGTH.size)
            if len(head) < _LENGTH.size:
                raise EOFError("the file ends before its last record")
            (length,) = _LENGTH.unpack(head)
            if f.tell() + length > size:  # checked first: read() would allocate it whole
                raise EOFError("the file ends inside a record")
            value = marshal.loads(f.read(length))
            if value is None:
                return
            yield value


def chunks(values: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """``values`` in lists of ``size`` (the last shorter), one record's worth each."""
    found = iter(values)
    while chunk := list(itertools.islice(found, size)):
        yield chunk
