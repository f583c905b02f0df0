"""The journal ``python -m gates init`` keeps while it writes (``.gates-init/`` beside the policy),
as every other command sees it.

``init`` is all or nothing (``gates/init.py``): before its first write it journals every file it
may change, and a failure puts them back. A ``kill -9`` leaves the journal armed
(``.gates-init/journal.json``) and the project half-written: a policy, lock, checksums file or
data copy of the new table beside the old ones. The next ``init`` restores first; every other
command (``run``, ``data approve``, ``serve``, ``deploy``, ``ci ...``) refuses to run on such a
project, with one line naming the journal and the command that restores it
(``python -m gates init --restore``). They never restore by themselves: a journal is input like
any other file of the project, and a pull request can commit one (``git add -f``, although
``.gitignore`` lists it); CI restoring it would write the files it names over the checkout. A
journal git tracks is refused as committed, with the ``git rm`` that removes it (no command
restores from it, ``init`` included), so a pull request that commits one fails its own checks
and blocks nothing else. In a checkout whose git cannot be run, whether it was committed cannot
be told, and the journal is refused the same way (fail closed). A ``.gates-init`` folder without ``journal.json`` (a kill before the
journal was armed: nothing was written yet) is no half-written project and is left to ``init``.
"""

from __future__ import annotations

import os
from pathlib import Path

from gates.errors import GatesError
from pipeline.gittree import from_the_tree, tracked_files

# Beside the policy: the files init may change, as they were, while it runs.
JOURNAL = ".gates-init"
MANIFEST = "journal.json"
RESTORE = "python -m gates init --restore"


class JournalError(GatesError):
    """The project holds an init journal: half-written, or one that came from the commit."""


def committed(root: Path) -> str | None:
    """The message for a journal git tracks in the checkout at ``root``; None when it tracks none."""
    folder = root / JOURNAL
    if not os.path.lexists(folder):
        return None
    tracked = tracked_files(root, folder)
    if not tracked:
        return _untold(folder, root)
    more = f" (and {len(tracked) - 1} more)" if len(tracked) > 1 else ""
    return (
        f"{tracked[0]}{more}: an init journal committed to the repository ({JOURNAL}/ is never "
        "committed: .gitignore lists it); nothing is restored from it and nothing runs beside "
        f"it: remove it (git rm -r {JOURNAL}) and commit"
    )


def _untold(folder: Path, root: Path) -> str | None:
    """The message when git cannot say whether it tracks the journal (a checkout whose git is
    missing or does not run: ``from_the_tree`` fails closed); None when it tracks nothing."""
    if folder.is_symlink():
        return None  # ``leftover`` refuses it as not a folder; git tracks no file through it
    reason = from_the_tree(folder, root)
    if reason is None:
        return None
    return (
        f"{folder}: whether the init journal comes from the repository cannot be told "
        f"({reason}); nothing is restored from it and nothing runs beside it: run this command "
        "where git runs"
    )


def leftover(root: Path) -> str | None:
    """Why the project at ``root`` must not be used as it is, or None: a committed journal, a
    ``.gates-init`` that is not a real folder, or an armed journal an interrupted init left."""
    folder = root / JOURNAL
    if not os.path.lexists(folder):
        return None
    found = committed(root)
    if found is not None:
        return found
    if folder.is_symlink() or not folder.is_dir():
        return (
            f"{folder}: not a folder (init keeps its journal in a real folder of that name); "
            "remove it"
        )
    if not os.path.lexists(folder / MANIFEST):
        return None  # killed before it was armed: nothing was written
    return (
        f"{folder}: an interrupted 'python -m gates init' left its journal, so the project is "
        "half-written (its policy, data copy, lock or checksums); put every file back as it "
        f"was with '{RESTORE}' (or run init again), then run this command again"
    )


def refuse_leftover(root: Path) -> None:
    """JournalError (one line) when ``leftover`` finds a reason."""
    reason = leftover(root)
    if reason is not None:
        raise JournalError(reason)
