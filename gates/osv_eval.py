"""Whether an OSV record affects a PyPI package at a version: the OSV schema's evaluation, fail closed.

The schema's ``IsVulnerable`` (https://ossf.github.io/osv-schema/#evaluation): a version is
affected when an ``affected[]`` entry of its package lists it in ``versions``, or when one of the
entry's ranges, walked over its events sorted by version, leaves it vulnerable::

    for evt in sorted(range.events):          # only if v is below some limit (none: "*")
        if introduced and v >= introduced:      vulnerable = True
        elif fixed and v >= fixed:              vulnerable = False
        elif last_affected and v > last_affected: vulnerable = False

Versions compare as PEP 440 versions (``packaging``), including epochs, pre-, post-, dev- and
local versions. Where the schema leaves a choice open, or the data cannot be evaluated, the
choice here is the one that cannot turn an affected version into a clean one:

- ``introduced: "0"`` sorts before every version (``0.dev0`` and ``0a1`` included); any other
  ``"0"`` is the version 0.
- Events at one version are walked ``fixed``, then ``introduced``, then ``last_affected``:
  ``[1.0, 2.0)`` followed by ``[2.0, 3.0)`` affects 2.0, and ``introduced 1.0, last_affected
  1.0`` affects 1.0 alone.
- A range holding a version that does not parse as PEP 440 (``fixed: "2019-09-12"``) cannot be
  placed on the line of versions: it affects every version (the advisory is reported; a waiver
  that names it is how a reviewer accepts it). ``limit`` values containing ``*`` are infinity.
- A version with a local label (``1.0+build``) is a build of its public version: it is affected
  when it or its public version is (``last_affected: 1.0`` and ``versions: [1.0]`` catch it).
- ``SEMVER`` ranges are evaluated like ``ECOSYSTEM`` ones (their versions parsed as PEP 440, the
  only versions a PyPI package has). ``GIT`` ranges need the repository's commit graph; they
  affect nothing here, and the schema requires the record's ``versions`` list to cover them.
- A record with ``withdrawn`` set affects nothing (pip-audit ignores it too).
- Anything that breaks the schema's shape (an unknown range type or event kind, an event with
  two kinds, a range with no ``introduced``, a schema version other than 1.x) is a
  ``RecordError``: the record cannot be evaluated, and the caller must not answer "clean".
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from gates.errors import GatesError

EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
RANGE_TYPES = ("ECOSYSTEM", "SEMVER", "GIT")
_EVALUATED = ("ECOSYSTEM", "SEMVER")
# The walking order of events at one version (see the module docstring).
_RANK = {"fixed": 0, "introduced": 1, "last_affected": 2}


class RecordError(GatesError):
    """An OSV record that does not have the schema's shape; the message says where."""


@functools.lru_cache(maxsize=1 << 16)
def parse_version(text: str) -> Version | None:
    """``text`` as a PEP 440 version, or None when it is not one."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


@dataclass(frozen=True)
class Range:
    """One ECOSYSTEM or SEMVER range, its events parsed and sorted for the schema's walk."""

    events: tuple[tuple[str, Version | None], ...]  # (kind, bound); None is introduced "0"
    limits: tuple[Version, ...] | None  # None: no limit, or a "*" one
    unevaluable: str | None  # why the range affects every version, or None

    def affects(self, version: Version) -> bool:
        """The schema's ``BeforeLimits`` and event walk for one version."""
        if self.unevaluable is not None:
            return True
        if self.limits is not None and not any(version < limit for limit in self.limits):
            return False
        vulnerable = False
        for kind, bound in self.events:
            if kind == "introduced":
                if bound is None or version >= bound:
                    vulnerable = True
            elif bound is not None and (
                (kind == "fixed" and version >= bound)
                or (kind == "last_affected" and version > bound)
            ):
                vulnerable = False
        return vulnerable


@dataclass(frozen=True)
class Package:
    """One ``affected[]`` entry for a PyPI package: its listed versions and evaluable ranges."""

    name: str  # canonical (PEP 503)
    listed: frozenset[Version]
    ranges: tuple[Range, ...]

    def affects(self, version: Version) -> bool:
        """``IncludedInVersions`` or ``IncludedInRanges``."""
        return version in self.listed or any(r.affects(version) for r in self.ranges)


@dataclass(frozen=True)
class Advisory:
    """An OSV record, compiled once: which PyPI packages and versions it affects."""

    id: str
    withdrawn: bool
    packages: tuple[Package, ...]

    @property
    def unevaluable(self) -> tuple[str, ...]:
        """Why some of its ranges affect every version (empty when all could be evaluated)."""
        return tuple(r.unevaluable for p in self.packages for r in p.ranges if r.unevaluable)

    def affects(self, name: str, version: Version) -> bool:
        """Whether the record affects PyPI package ``name`` (canonical) at ``version``."""
        if self.withdrawn:
            return False
        candidates = [version]
        if version.local is not None:
            candidates.append(Version(version.public))
        return any(p.name == name and p.affects(v) for p in self.packages for v in candidates)


def _event(event: Any, where: str) -> tuple[str, str]:
    if not isinstance(event, dict) or len(event) != 1:
        msg = f"{where}: an event must be a mapping with exactly one of {', '.join(EVENT_KINDS)}"
        raise RecordError(msg)
    ((kind, value),) = event.items()
    if kind not in EVENT_KINDS:
        msg = f"{where}: unknown event kind {kind!r} (expected one of {', '.join(EVENT_KINDS)})"
        raise RecordError(msg)
    if not isinstance(value, str):
        msg = f"{where}.{kind}: expected a version string, found {type(value).__name__}"
        raise RecordError(msg)
    return kind, value


def compile_range(range_: Any, where: str = "range") -> Range | None:
    """Check one ``ranges[]`` entry; the evaluable form of an ECOSYSTEM/SEMVER range, else None."""
    if not isinstance(range_, dict):
        raise RecordError(f"{where}: expected a mapping, found {type(range_).__name__}")
    kind = range_.get("type")
    if kind not in RANGE_TYPES:
        msg = f"{where}.type: {kind!r} is not one of {', '.join(RANGE_TYPES)}"
        raise RecordError(msg)
    raw = range_.get("events")
    if not isinstance(raw, list) or not raw:
        raise RecordError(f"{where}.events: expected a non-empty list of events")
    events = [_event(e, f"{where}.events[{i}]") for i, e in enumerate(raw)]
    if kind not in _EVALUATED:
        return None
    if not any(k == "introduced" for k, _ in events):
        raise RecordError(f"{where}.events: no 'introduced' event (the schema requires one)")
    walk: list[tuple[tuple[Any, ...], str, Version | None]] = []
    limits: list[Version] = []
    unlimited = False
    unevaluable = None
    for kind_, value in events:
        if kind_ == "introduced" and value == "0":
            walk.append(((0,), kind_, None))
            continue
        if kind_ == "limit" and "*" in value:
            unlimited = True
            continue
        bound = parse_version(value)
        if bound is None:
            unevaluable = unevaluable or f"{kind_} {value!r} is not a PEP 440 version"
            continue
        if kind_ == "limit":
            limits.append(bound)
        else:
            walk.append(((1, bound, _RANK[kind_]), kind_, bound))
    walk.sort(key=lambda step: step[0])
    return Range(
        events=tuple((k, b) for _, k, b in walk),
        limits=None if unlimited or not limits else tuple(limits),
        unevaluable=unevaluable,
    )


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError(f"{where}: expected a list of strings")
    return value


def compile_record(record: Any) -> Advisory:
    """Check an OSV record's shape and compile its PyPI entries; a ``RecordError`` says where."""
    if not isinstance(record, dict):
        raise RecordError(f"not an OSV record: expected a mapping, found {type(record).__name__}")
    if "schema_version" in record:
        schema = parse_version(str(record["schema_version"]))
        if schema is None or schema.major != 1:
            # pip-audit skips records of another major version: never hand it one.
            msg = f"schema_version {record['schema_version']!r}: only OSV schema 1.x is understood"
            raise RecordError(msg)
    affected = record.get("affected") or []
    if not isinstance(affected, list):
        raise RecordError("affected: expected a list")
    packages = []
    for i, entry in enumerate(affected):
        where = f"affected[{i}]"
        package = entry.get("package") if isinstance(entry, dict) else None
        if not isinstance(package, dict) or not all(
            isinstance(package.get(key), str) for key in ("ecosystem", "name")
        ):
            raise RecordError(f"{where}.package: expected a mapping with ecosystem and name")
        ranges = entry.get("ranges") or []
        if not isinstance(ranges, list):
            raise RecordError(f"{where}.ranges: expected a list")
        compiled = [compile_range(r, f"{where}.ranges[{j}]") for j, r in enumerate(ranges)]
        listed = _strings(entry.get("versions"), f"{where}.versions")
        if package["ecosystem"] != "PyPI":
            continue
        # A listed string that is not PEP 440 names no version pip can install or pip-audit ask.
        parsed = (parse_version(v) for v in listed)
        packages.append(
            Package(
                name=canonicalize_name(package["name"]),
                listed=frozenset(v for v in parsed if v is not None),
                ranges=tuple(r for r in compiled if r is not None),
            )
        )
    return Advisory(
        id=str(record.get("id", "")), withdrawn="withdrawn" in record, packages=tuple(packages)
    )


def range_affects(version: Version, range_: dict[str, Any]) -> bool:
    """Whether one ``ranges[]`` entry affects ``version`` (GIT ranges: never)."""
    compiled = compile_range(range_)
    return compiled is not None and compiled.affects(version)


def record_affects(record: dict[str, Any], name: str, version: Version) -> bool:
    """Whether an OSV record affects PyPI package ``name`` (canonical) at ``version``."""
    return compile_record(record).affects(name, version)
