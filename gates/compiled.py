"""Compiled code in the tree: files Python would import instead of the reviewed source.

A pull request can add, beside (or instead of) a ``.py`` file, a file that Python imports in its
place and that no reviewer reads:

- an extension module (``registry.cpython-311-x86_64-linux-gnu.so``, ``.abi3.so``, ``.pyd``):
  the import system tries extension suffixes before ``.py``, in the package folder or, for a
  top-level name such as ``pydantic``, at the project root that ``python -m`` puts first on
  ``sys.path``;
- a sourceless ``.pyc`` (``registry.pyc`` beside the package's modules) for a module with no
  source;
- an *unchecked* hash-based ``.pyc`` in ``__pycache__`` (PEP 552): Python loads it without
  comparing it with the source. Python itself writes timestamp ``.pyc`` files, which are
  re-validated against the source's size and mtime (a fresh checkout's mtimes), and checked
  hash-based ones; neither is reported.

Distribution metadata at the project root is reported too: ``importlib.metadata`` reads every
``*.dist-info`` and ``*.egg-info`` of each ``sys.path`` entry, the root first, and libraries load
the entry points it lists when they are imported (pydantic builds its plugins with the first
model, ``dask.sizeof`` loads its own at import): a planted ``x-0.dist-info/entry_points.txt``
naming ``[pydantic] x = x`` ran a root ``x.py`` no gate scans in every gate's process, before
any gate (red team 8). The rule lives in ``pipeline.distmeta`` (``python -m pipeline`` applies it
too, and ``pipeline/`` never imports ``gates/``); ``refuse_metadata`` stops ``python -m gates``
and its warm worker before any library is imported.

Only folders an import can reach are walked: the project root and, below it, folders whose
names are identifiers (``gates/``, ``pipeline/``, ``venv/``, but not ``.nox/``, ``.git/`` or
``lib/python3.11``). Standard library only: ``noxfile.py`` runs this file as a script in
isolated mode (``python -I gates/compiled.py ROOT``: a script is always compiled from its
source, and ``-I`` keeps the tree off ``sys.path``) before it imports anything from the tree;
the script imports ``pipeline.distmeta`` only once its walk found no compiled file (see ``main``).
"""

from __future__ import annotations

import importlib.machinery
import os
import stat
import sys
from pathlib import Path

# What the import system takes for an extension module on this platform, plus the other
# platforms' forms, so that a file planted for a CI runner of another kind is seen here too.
EXTENSION_SUFFIXES = tuple(sorted({*importlib.machinery.EXTENSION_SUFFIXES, ".so", ".pyd"}))
BYTECODE_SUFFIXES = (".pyc", ".pyo")
# The tree this file belongs to (bound once, at top level: the sast gate's SAST102 reads a
# sys.path write of it as the scanned file's own folder or one above it).
TREE = Path(__file__).resolve().parents[1]
# PEP 552: the flags word after the magic number; bit 0 hash-based, bit 1 check the source.
_HASH_BASED, _CHECK_SOURCE = 0b01, 0b10


def find_compiled(root: Path) -> list[tuple[str, str]]:
    """``(path relative to root, why)`` for every compiled file an import could pick up, and
    every distribution metadata entry at the root (``pipeline.distmeta``)."""
    from pipeline.distmeta import find_metadata  # noqa: PLC0415 - the script imports it late

    return [*find_metadata(root), *find_files(root)]


def find_files(root: Path) -> list[tuple[str, str]]:
    """``(path relative to root, why)`` for every compiled file an import could pick up."""
    found: list[tuple[str, str]] = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        pycache = here.name == "__pycache__"
        dirs[:] = sorted(d for d in dirs if d.isidentifier() or (d == "__pycache__"))
        for name in sorted(files):
            path = here / name
            shown = path.relative_to(root).as_posix()
            if name.endswith(EXTENSION_SUFFIXES):
                found.append((shown, "an extension module, imported before the .py source"))
            elif name.endswith(BYTECODE_SUFFIXES) and not pycache:
                found.append((shown, "a sourceless bytecode file, imported as a module"))
            elif name.endswith(BYTECODE_SUFFIXES) and not _regular(path):
                found.append((shown, "bytecode that is not a regular file (a FIFO or device)"))
            elif name.endswith(BYTECODE_SUFFIXES) and _unchecked(path):
                found.append((shown, "an unchecked hash-based .pyc, loaded without its source"))
    return found


def refuse_metadata(folder: str) -> None:
    """``pipeline.distmeta.refuse_metadata``: exit 2 when ``folder`` holds distribution metadata."""
    from pipeline.distmeta import refuse_metadata as refuse  # noqa: PLC0415

    refuse(folder)


def _regular(path: Path) -> bool:
    """Whether ``path`` leads to a regular file: a symlink to a FIFO (or ``/proc/self/fd/1``, a
    pipe) made reading its header wait for ever, in the lint gate and in nox's first check."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _unchecked(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            header = handle.read(8)
    except OSError:
        return True  # unreadable: it cannot be shown to be harmless
    if len(header) < 8:
        return False  # too short to load: Python recompiles from the source
    flags = int.from_bytes(header[4:8], "little")
    return bool(flags & _HASH_BASED) and not flags & _CHECK_SOURCE


def main(argv: list[str]) -> int:
    """``python -I gates/compiled.py ROOT``: list what :func:`find_compiled` finds; 1 if any.

    Run as a script, the tree is off ``sys.path``: the walk (standard library only) goes first,
    over ROOT and over this file's own tree. Only when neither holds a compiled file is every
    module of the tree its reviewed source, and the tree put on ``sys.path`` to import the
    metadata rule from ``pipeline.distmeta`` (an import before the walk would have run a
    planted ``pipeline/__init__.*.so`` in the checker itself).
    """
    root = Path(argv[0]) if argv else Path.cwd()
    tree = TREE
    found = find_files(root)
    if not found and tree != root.resolve():
        found = [(f"{tree / path}", why) for path, why in find_files(tree)]
    if not found:
        if str(TREE) not in sys.path:
            sys.path.insert(0, str(TREE))
        found = find_compiled(root)
    for path, why in found:
        print(f"{path}: {why}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
