"""Where a policy path may point: the rule ``pipeline.config`` applies to every path key.

Standard library only: ``noxfile.py`` runs in nox's own interpreter, which need not have
pydantic, and applies the same rule to ``[run].reports_dir`` (``REPORTS_DIR_RULE``) before its
closing lines read a verdict from that folder (``value_problem``).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pydantic import GetJsonSchemaHandler
    from pydantic.json_schema import JsonSchemaValue
    from pydantic_core import CoreSchema

# Bounds on one path value: far below PATH_MAX (4096) and NAME_MAX (255 bytes per component).
MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255


@dataclass(frozen=True)
class PathRule:
    """Marks a policy key as a path, and says what it must name and where it may point.

    ``kind`` is what the path must be when it exists (``file``, ``dir``, or ``any`` of the two;
    never a FIFO, socket or device). ``inside`` (the rule for every key but two) requires the
    path, with every symlink followed, to lie in the project folder (the policy's folder);
    ``inside=False`` requires it to lie outside. ``output`` marks a folder the gates write
    into: it may not be the project folder itself. ``uri`` marks a URI that names a local
    path only for the ``file:`` and ``sqlite:`` schemes (or no scheme at all).
    """

    kind: Literal["file", "dir", "any"]
    inside: bool = True
    output: bool = False
    uri: bool = False

    def describe(self) -> str:
        """What the key must name, in words (for the JSON Schema and error messages)."""
        what = {"file": "a file", "dir": "a folder", "any": "a file or folder"}[self.kind]
        where = "inside the project folder" if self.inside else "outside the project folder"
        if self.output:
            where += " (not the project folder itself)"
        return f"{what} {where}"

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        described = "a URI or path naming " if self.uri else "a path naming "
        schema["description"] = described + self.describe() + ", symlinks followed"
        return schema


# [run].reports_dir's rule (``pipeline.config.RunPolicy``), also applied by ``noxfile.py``.
REPORTS_DIR_RULE = PathRule("dir", output=True)


def text_problem(value: str) -> str | None:
    """What a path value must be, when checks that need no file system refuse it: no NUL or
    control characters, no ``~``, no component over ``MAX_NAME_BYTES``; else None."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "a path without NUL bytes or control characters"
    if value.startswith("~"):
        return "a path relative to the project folder ('~' is not expanded)"
    if any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in value.split("/")):
        return f"a path whose every component is at most {MAX_NAME_BYTES} bytes long"
    return None


def value_problem(root: Path, value: object, rule: PathRule) -> str | None:
    """Why a policy value breaks ``rule`` as ``pipeline.config`` would say it, or None.

    The checks of ``PathText`` (a string of 1 to ``MAX_PATH_CHARS`` characters,
    ``text_problem``) and of ``check_policy_paths`` (``path_problem``), for one value read
    without the policy model: "expected ...; found ..., which ...".
    """
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_PATH_CHARS:
        return f"expected a string of 1 to {MAX_PATH_CHARS} characters; found {value!r:.200}"
    text = text_problem(value)
    if text is not None:
        return f"expected {text}; found {value[:200]!r}"
    try:
        resolved = root.resolve()
        info = os.stat(resolved)
    except (OSError, RuntimeError) as err:
        return f"cannot resolve the project folder {root}: {err}"
    problem = path_problem(resolved, (info.st_dev, info.st_ino), value, rule)
    if problem is None:
        return None
    return f"expected {rule.describe()}; found {value[:200]!r}, {problem}"


def path_problem(root: Path, root_id: tuple[int, int], text: str, rule: PathRule) -> str | None:
    """Why ``text`` breaks ``rule`` (a phrase), or None; ``root`` resolved, ``root_id`` its
    (device, inode)."""
    try:
        resolved = (root / text).resolve()
    except (OSError, RuntimeError, ValueError) as err:
        return f"which cannot be resolved ({err})"
    return _place_problem(resolved, root, root_id, rule) or _type_problem(resolved, rule)


def _place_problem(
    resolved: Path, root: Path, root_id: tuple[int, int], rule: PathRule
) -> str | None:
    shown = str(resolved)[:200]
    inside = _is_inside(resolved, root, root_id)
    if rule.inside and not inside:
        return f"which resolves to {shown}, outside the project folder {root}"
    if not rule.inside and (inside or root.is_relative_to(resolved)):
        where = "inside" if inside else "a folder holding"
        return (
            f"which resolves to {shown}, {where} the project folder {root} "
            "(whatever is there is the pull request's to write)"
        )
    if rule.output and _same(resolved, root_id):
        return "which is the project folder itself"
    return None


def _type_problem(resolved: Path, rule: PathRule) -> str | None:
    try:
        info = os.stat(resolved)
    except FileNotFoundError:
        return None  # not there yet: the gate that reads it says so, the one that writes makes it
    except NotADirectoryError:
        return "part of which is a file, not a folder"
    except OSError as err:
        return f"which cannot be examined ({err.strerror})"
    if stat.S_ISREG(info.st_mode) and rule.kind != "dir":
        return None
    if stat.S_ISDIR(info.st_mode) and rule.kind != "file":
        return None
    return f"which is {file_type(info)}"


def _is_inside(resolved: Path, root: Path, root_id: tuple[int, int]) -> bool:
    if resolved.is_relative_to(root):
        return True
    return any(_same(folder, root_id) for folder in (resolved, *resolved.parents))


def _same(path: Path, identity: tuple[int, int]) -> bool:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return False
    return (info.st_dev, info.st_ino) == identity


def file_type(info: os.stat_result) -> str:
    """What ``info`` describes, in words ("a FIFO", "a directory", ...)."""
    mode = info.st_mode
    for test, name in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"
