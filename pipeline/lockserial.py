"""A data lock's ``serial``: the approval counter ``data approve`` raises by one every time.

Standard library only (with ``pipeline.fsio`` and ``pipeline.errors``): the verdict's policy
check reads the base branch's serial, and a warm run must not import pandas for it.
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import DataError
from pipeline.fsio import strict_json


def lock_serial(raw: bytes, *, where: str) -> int:
    """The ``serial`` of a lock given as bytes (0: none, a lock from before serials).

    DataError naming ``where`` when the bytes are not a lock's JSON or the serial is not a whole
    number of at least 1.
    """
    try:
        document = strict_json(raw)
    except (ValueError, RecursionError) as err:  # JSON, UTF-8, nesting, a name given twice
        msg = f"{where}: data lock is not valid JSON: {err}"
        raise DataError(msg) from None
    if not isinstance(document, dict):
        msg = (
            f"{where}: data lock is malformed: expected an object, found {type(document).__name__}"
        )
        raise DataError(msg)
    return serial_of(document, where=where)


def serial_of(document: dict[str, Any], *, where: str) -> int:
    """The ``serial`` of a lock's parsed document (0: none); DataError naming ``where`` otherwise."""
    if "serial" not in document:
        return 0
    value = document["serial"]
    if type(value) is not int or value < 1:
        msg = (
            f"{where}: serial: expected a whole number of at least 1 (written by data approve), "
            f"found {value!r:.40}"
        )
        raise DataError(msg)
    return value
