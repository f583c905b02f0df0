"""Read a hash-pinned requirements lock the way pip does, and refuse every line it cannot audit.

The audit must judge exactly what ``pip install --require-hashes -r LOCK`` installs. pip reads a
requirements file in steps (``pip/_internal/req/req_file.py``): it decodes the bytes (by a BOM,
a ``coding:`` comment in the first two lines, else UTF-8, else the locale's encoding), splits
them with ``str.splitlines``, joins lines ending in a backslash, strips ``#`` comments,
substitutes ``${VAR}`` from the environment, then splits each line into a requirement and
options at the first word that starts with ``-``. This module repeats those steps (the parts
that decide what a line means) and accepts a logical line only when it is exactly one
requirement of the form ``name==version [; marker]``, parsed by ``packaging``, followed only
by ``--hash=ALGO:HEX`` options. Extras on a pin (``coverage[toml]==7.17.3``, which uv writes
with ``--no-strip-extras`` so that pip 23.0 and 23.2 accept the lock in ``--require-hashes`` mode)
are allowed: the pin is audited by its name and version, and whatever an extra pulls in must be
a hash-pinned line of the lock itself, or pip refuses to install it. Everything else is a
problem naming the line:

- option lines: ``-r``/``-c`` (other files), ``-e`` (editable), ``-i``/``--index-url``,
  ``--extra-index-url``, ``-f``/``--find-links``, ``--trusted-host``, ``--no-binary``, ... ;
- any option other than ``--hash`` after a requirement, including one that a continuation
  line brings in, and a requirement without ``--hash``;
- anything that is not one exact pin: ``>=``, ``~=``, ``!=``, ``==1.*``, ``===`` (a string
  match, not a version), several specifiers, none;
- a name pip would take for a local file or folder (``./pkg``, ``name==1.0+x.whl``: a
  version whose local label ends like an archive makes pip install that file if it exists);
- ``${VAR}`` (pip would substitute the environment), bytes outside printable ASCII (pip's
  decoding depends on BOMs, ``coding:`` comments and the locale), a ``coding:`` comment;
- the same name twice, unless each line carries a marker and the markers differ (a universal
  lock pins e.g. numpy once per Python version; every one of those pins is audited).

A requirement with a direct reference (``name @ https://...``, a VCS or ``file:`` URL) that
does carry hashes is well formed but cannot be audited by version: it is returned apart
(``Lock.direct``), for the gate to report as not audited.
"""

from __future__ import annotations

import codecs
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

# pip's own patterns (pip/_internal/req/req_file.py, pip/_internal/utils/filetypes.py).
_COMMENT = re.compile(r"(^|\s+)#.*$")
_ENV_VAR = re.compile(r"\$\{[A-Z0-9_]+\}")
_PEP263 = re.compile(rb"coding[:=]\s*([-\w.]+)")
_ARCHIVES = (
    ".zip",
    ".whl",
    ".tar.bz2",
    ".tbz",
    ".tar.gz",
    ".tgz",
    ".tar",
    ".tar.xz",
    ".txz",
    ".tlz",
    ".tar.lz",
    ".tar.lzma",
)
# The digests pip accepts in --hash, with their length in hex digits.
_HASH = re.compile(r"--hash=(?:sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})")
_PRINTABLE = re.compile(r"[^\x20-\x7e]")
_SHOWN = 120
# What each kind of option line would make pip do.
_OPTION_EFFECT = {
    "-r": "read requirements from another file, which the audit never sees",
    "--requirement": "read requirements from another file, which the audit never sees",
    "-c": "read constraints from another file",
    "--constraint": "read constraints from another file",
    "-e": "install an editable project or checkout, which has no version to audit",
    "--editable": "install an editable project or checkout, which has no version to audit",
    "-i": "change the index packages come from",
    "--index-url": "change the index packages come from",
    "--extra-index-url": "add an index packages may come from",
    "-f": "look for packages in other places",
    "--find-links": "look for packages in other places",
    "--trusted-host": "accept an index without valid HTTPS",
    "--no-binary": "build packages from source",
}


@dataclass(frozen=True)
class Pin:
    """One ``name==version`` line of a lock, with its marker, hashes, line and lock file."""

    name: str
    version: str
    marker: str | None
    hashes: tuple[str, ...]
    line: int
    lock: str = ""

    @property
    def canonical(self) -> str:
        """The PEP 503 name pip-audit reports."""
        from packaging.utils import canonicalize_name  # noqa: PLC0415

        return str(canonicalize_name(self.name))


@dataclass(frozen=True)
class LockLine:
    """A logical line of the lock (its first physical line number) that is not a plain pin."""

    line: int
    text: str
    reason: str
    # A hash-pinned direct reference: well formed, but pip-audit has no version to judge.
    direct: bool = False

    def describe(self, shown: str) -> str:
        """``lock:line: 'text': reason``."""
        text = self.text if len(self.text) <= _SHOWN else self.text[: _SHOWN - 3] + "..."
        where = f"{shown}:{self.line}" if self.line else shown
        return f"{where}: {text!r}: {self.reason}" if text else f"{where}: {self.reason}"


@dataclass(frozen=True)
class Lock:
    """What one lock file holds: its pins, its direct references and its problems."""

    path: Path
    shown: str
    pins: tuple[Pin, ...]
    direct: tuple[LockLine, ...]
    problems: tuple[LockLine, ...]


def logical_lines(text: str) -> list[tuple[int, str]]:
    """``(first line number, line)`` after pip's joining of continued lines and comment removal."""
    joined: list[tuple[int, str]] = []
    first = 0
    pending: list[str] = []
    # pip.req_file.join_lines: a comment line ends a continuation; "\" is stripped at both ends.
    for number, physical in enumerate(text.splitlines(), start=1):
        if not physical.endswith("\\") or _COMMENT.match(physical):
            line = " " + physical if _COMMENT.match(physical) else physical
            if pending:
                pending.append(line)
                joined.append((first, "".join(pending)))
                pending = []
            else:
                joined.append((number, line))
        else:
            if not pending:
                first = number
            pending.append(physical.strip("\\"))
    if pending:
        joined.append((first, "".join(pending)))
    # pip.req_file.ignore_comments
    stripped = ((n, _COMMENT.sub("", line).strip()) for n, line in joined)
    return [(n, line) for n, line in stripped if line]


def _split(line: str) -> tuple[str, str]:
    """pip.req_file.break_args_options: words up to the first one starting with '-'."""
    tokens = line.split(" ")
    args: list[str] = []
    options = tokens[:]
    for token in tokens:
        if token.startswith("-"):
            break
        args.append(token)
        options.pop(0)
    return " ".join(args), " ".join(options)


def _encoding_problems(data: bytes) -> list[LockLine]:
    problems = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        # A line may end in CR LF; any other CR (or control character) is one.
        bad = _PRINTABLE.search(raw.removesuffix(b"\r").decode("latin-1"))
        if bad is None:
            continue
        byte = ord(bad.group())
        why = (
            "a control character (pip splits lines at some of them, and words only at spaces)"
            if byte < 0x20 or byte == 0x7F
            else "not ASCII (pip decodes a lock by its BOM, a coding comment or the locale, "
            "so only ASCII reads the same everywhere)"
        )
        problems.append(
            LockLine(number, "", f"byte 0x{byte:02x} at column {bad.start() + 1}: {why}")
        )
    for number, raw in enumerate(data.split(b"\n")[:2], start=1):
        declared = _PEP263.search(raw) if raw[:1] == b"#" else None
        if declared is None:
            continue
        name = declared.group(1).decode("ascii", "replace")
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            codec = name
        if codec not in ("utf-8", "ascii"):
            problems.append(
                LockLine(
                    number, "", f"declares the encoding {name!r}: pip would decode the lock so"
                )
            )
    return problems


def _pin(number: int, line: str, shown: str) -> Pin | LockLine:  # noqa: PLR0911 - one per rule
    """The pin a logical requirement line holds, or why it is not one."""
    from packaging.requirements import InvalidRequirement, Requirement  # noqa: PLC0415

    args, options = _split(line)
    if not args:
        option = line.split(maxsplit=1)[0].split("=", maxsplit=1)[0]
        effect = _OPTION_EFFECT.get(option, "change how pip installs the lock")
        return LockLine(
            number,
            line,
            f"an option line ({option}): pip would {effect}; the lock may hold only "
            "hash-pinned name==version lines",
        )
    try:
        # shlex reads one character at a time: without quotes or escapes it is str.split.
        words = shlex.split(options) if set("'\"\\") & set(options) else options.split()
    except ValueError as err:
        return LockLine(number, line, f"options pip cannot split ({err})")
    other = [w for w in words if not _HASH.fullmatch(w)]
    if other:
        return LockLine(
            number,
            line,
            f"option {other[0]!r} after the requirement: only --hash=sha256:<64 hex> may "
            "follow it (a continued line must not bring in any other pip option)",
        )
    hashes = tuple(w.removeprefix("--hash=") for w in words)
    try:
        req = Requirement(args)
    except InvalidRequirement as err:
        return LockLine(number, line, f"not a requirement ({str(err).splitlines()[0]})")
    if req.url is not None:
        reason = "a direct reference (URL, VCS or local path) has no version to audit"
        if not hashes:
            return LockLine(number, line, f"{reason}, and it has no --hash")
        return LockLine(number, line, reason, direct=True)
    specs = list(req.specifier)
    spec = specs[0] if len(specs) == 1 else None
    if spec is None or spec.operator != "==" or "*" in spec.version:
        what = "'===' matches a string, not a version: " if "===" in args else ""
        return LockLine(number, line, f"{what}not pinned to one exact version (name==version)")
    requirement = args.split(";", 1)[0].strip()
    if requirement.startswith(".") or "/" in requirement or "\\" in requirement:
        return LockLine(number, line, "pip would read it as a local path")
    # pip.utils.filetypes.is_archive_file, with pip's splitext (".tar" goes with the suffix).
    base, ext = posixpath.splitext(requirement)
    if base.lower().endswith(".tar"):
        ext = base[-4:] + ext
    ext = ext.lower()
    if ext in _ARCHIVES:
        return LockLine(
            number,
            line,
            f"ends in {ext}: pip would install a local file of that name if one exists",
        )
    if not hashes:
        return LockLine(number, line, "no --hash; the lock must be hash-pinned")
    marker = str(req.marker) if req.marker is not None else None
    return Pin(req.name, spec.version, marker, hashes, number, shown)


def read_lock(path: Path, shown: str) -> Lock:
    """Parse the lock at ``path`` (``shown`` names it in messages); a missing file is OSError."""
    data = path.read_bytes()
    encoding = _encoding_problems(data)
    if encoding:
        return Lock(path, shown, (), (), tuple(encoding))
    text = data.decode("ascii")
    pins: list[Pin] = []
    direct: list[LockLine] = []
    problems: list[LockLine] = []
    for number, line in logical_lines(text):
        if _ENV_VAR.search(line):
            problems.append(
                LockLine(number, line, "pip would substitute ${...} from the environment")
            )
            continue
        found = _pin(number, line, shown)
        if isinstance(found, Pin):
            pins.append(found)
        elif found.direct:
            direct.append(found)
        else:
            problems.append(found)
    problems += _duplicates(pins)
    if not pins and not direct and not problems:
        problems.append(LockLine(0, "", "the lock pins nothing; an empty audit is not a pass"))
    return Lock(path, shown, tuple(pins), tuple(direct), tuple(problems))


def _duplicates(pins: list[Pin]) -> list[LockLine]:
    """A name pinned twice, unless both lines carry markers and the markers differ."""
    problems = []
    seen: dict[str, list[Pin]] = {}
    for pin in pins:
        for earlier in seen.get(pin.canonical, []):
            if pin.marker is None or earlier.marker is None or pin.marker == earlier.marker:
                problems.append(
                    LockLine(
                        pin.line,
                        f"{pin.name}=={pin.version}",
                        f"{pin.canonical} is pinned again (first on line {earlier.line}); "
                        "two pins of one name need two different markers",
                    )
                )
                break
        seen.setdefault(pin.canonical, []).append(pin)
    return problems
