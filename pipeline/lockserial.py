"""A data lock's ``serial``: the approval counter ``data approve`` raises by one every time.

Standard library only (with ``pipeline.fsio`` and ``pipeline.errors``): the verdict's policy
check reads the base branch's serial, and a warm run must not import pandas for it.
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import DataError
from pipeline.fsio import strict_json

# The largest serial: the largest integer every JSON reader holds exactly. A larger one on disk
# (4,300 nines: one more is no integer ``json`` writes) made ``data approve`` a traceback, and,
# signed and merged, left the base branch a serial no approval could go above (red team 12).
MAX_SERIAL = 2**53 - 1
# How far above the base branch's serial a changed lock's may be: ``data approve`` writes one
# above it (re-approving the same pull request adds one each time); a serial raised far beyond
# brings the base branch nearer ``MAX_SERIAL`` than any number of approvals could.
SERIAL_STEP = 1000


def lock_serial(raw: bytes, *, where: str) -> int:
    """The ``serial`` of a lock given as bytes (0: none, a lock from before serials).

    DataError naming ``where`` when the bytes are not a lock's JSON or the serial is not a whole
    number from 1 to ``MAX_SERIAL``.
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
    if type(value) is not int or not 1 <= value <= MAX_SERIAL:
        msg = (
            f"{where}: serial: expected a whole number of at least 1 and at most {MAX_SERIAL} "
            f"(written by data approve), found {value!r:.40}"
        )
        raise DataError(msg)
    return value


def next_serial(on_disk: int, base: int) -> int:
    """The serial ``data approve`` writes: one above the base branch's (``base``) and the lock
    on disk's (``on_disk``, the pull request's own: it counts only within ``SERIAL_STEP`` of
    the base's when there is one); DataError past ``MAX_SERIAL``."""
    if base and on_disk > base + SERIAL_STEP - 1:
        on_disk = 0
    serial = max(on_disk, base) + 1
    if serial > MAX_SERIAL:
        msg = f"serial: the next lock's would be {serial}, above the largest, {MAX_SERIAL}"
        raise DataError(msg)
    return serial
