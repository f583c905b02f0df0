"""Distribution metadata in the folder ``python -m`` runs from: entry points the tree installs.

``python -m gates`` and ``python -m pipeline`` put the folder they run from (a checkout) first
on ``sys.path``, and ``importlib.metadata`` reads every ``*.dist-info`` and ``*.egg-info`` of
each ``sys.path`` entry, that folder first. Libraries load the entry points listed there when
they are imported: pydantic builds its plugins with the first model (the policy's), and
``dask.sizeof`` loads its own at import. A committed ``x-0.dist-info/entry_points.txt`` naming
``[pydantic] x = x`` ran a root ``x.py`` no gate scans in every process started there, before
anything else (red team 8). ``refuse_metadata`` stops such a process before any library is
imported; ``gates.compiled`` reports the same entries (LINT007, nox's first check).

Standard library only, and nothing of the tree: both entry points import it first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Folders (or files) importlib.metadata takes for an installed distribution, by lowercase suffix.
METADATA_SUFFIXES = (".dist-info", ".egg-info")
_WHY = (
    "distribution metadata on sys.path: the entry points it lists run code from the tree "
    "in every process started here (pydantic plugins, dask.sizeof, ...)"
)


def find_metadata(folder: Path) -> list[tuple[str, str]]:
    """``(name, why)`` for every distribution metadata entry directly in ``folder``: on
    ``sys.path`` (``python -m`` puts the folder it runs from first), its entry points run code
    from the tree in any process that imports a library loading plugins, and its version stands
    in for the installed distribution's."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [(name, _WHY) for name in names if name.lower().endswith(METADATA_SUFFIXES)]


def refuse_metadata(folder: str) -> None:
    """Exit 2, naming each entry, when ``folder`` (``sys.path[0]``: the folder ``python -m``
    runs from) holds distribution metadata; call it before any library is imported."""
    found = find_metadata(Path(folder or os.getcwd()))
    if found:
        names = ", ".join(name for name, _ in found)
        sys.stderr.write(
            f"error: {names}: {found[0][1]}; expected none in the folder this runs from; "
            "refusing to start (LINT007): remove it (a project installed for development needs "
            "no metadata in its folder: pip install -e . with a PEP 660 backend writes none "
            "there)\n"
        )
        raise SystemExit(2)
