"""Planted attacks on the offline audit: versions the OSV range evaluator must not call clean.

Issue 14, item 8. Offline, whether a pin is affected is decided by ``gates.osv_eval`` (served to
pip-audit by ``gates.osv_server``). The planted records in ``tests/assets/osv-attacks`` each
hide an affected version from the first evaluator; one audit-gate run over a lock pinning all of
them must report every one (AUD001 at its lock line). Around them: the evaluator case by case
(every event kind and its boundaries), records that break the schema's shape (the gate errors,
naming the file), one HTTP round trip, and the whole ``../shared/advisory-db`` snapshot checked
against its own ``versions`` lists and against a reference written here from the OSV schema.
"""

from __future__ import annotations

import functools
import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from gates.audit import AuditGate
from gates.base import GateError, Outcome, RunContext, Status
from gates.osv_eval import RecordError, compile_range, compile_record, record_affects
from gates.osv_server import AdvisoryDb, AdvisoryDbError, serve
from pipeline.config import load_policy
from tests.project_support import ADVISORY_DB_ENV, OSV_FIXTURE, copy_project

ASSETS = Path(__file__).resolve().parent.parent / "assets"
ATTACKS = ASSETS / "osv-attacks"
SNAPSHOT = Path(__file__).resolve().parents[2].parent / "shared" / "advisory-db"
needs_snapshot = pytest.mark.skipif(
    not SNAPSHOT.is_dir(), reason="no ../shared/advisory-db beside the checkout"
)
_LOADER = getattr(yaml, "CBaseLoader", yaml.BaseLoader)  # every scalar a string, like the server

# (case, package, pinned version, planted record): each version is affected, and the first
# evaluator called it clean.
PLANTED = [
    ("introduced-0-vs-0.0.0.dev0", "attack-zero-dev", "0.0.0.dev0", "ATTACK-2024-0001"),
    ("introduced-0-vs-0a1", "attack-zero-pre", "0a1", "ATTACK-2024-0002"),
    ("introduced-0-vs-0.0.0rc1", "attack-zero-rc", "0.0.0rc1", "ATTACK-2024-0003"),
    ("introduced-0-vs-0.dev0", "attack-zero-dev-short", "0.dev0", "ATTACK-2024-0004"),
    ("introduced-0-vs-local-below-0", "attack-zero-local", "0.dev0+evil", "ATTACK-2024-0005"),
    ("introduced-0-fixed-in-epoch-1", "attack-zero-epoch-fix", "0a1", "ATTACK-2024-0006"),
    ("tied-events-back-to-back-ranges", "attack-tie-chain", "3.2.0", "ATTACK-2024-0007"),
    ("fixed-is-a-date", "attack-date-fixed", "1.4.4", "ATTACK-2024-0008"),
    ("introduced-not-pep440", "attack-bad-introduced", "2.0", "ATTACK-2024-0009"),
    ("last-affected-not-pep440", "attack-bad-last-affected", "3.0", "ATTACK-2024-0010"),
    ("limit-star-is-infinity", "attack-star-limit", "5.0", "ATTACK-2024-0011"),
    ("last-affected-vs-local-build", "attack-last-affected-local", "1.0+evil", "ATTACK-2024-0012"),
    ("listed-version-vs-local-build", "attack-listed-local", "1.0+evil", "ATTACK-2024-0013"),
]
HASH = "--hash=sha256:" + "0" * 64


def _attack_osv(root: Path) -> Path:
    """The tests' OSV fixture (it holds the canary) with the planted records beside it."""
    shutil.copytree(OSV_FIXTURE, root)
    shutil.copytree(ATTACKS / "vulns", root / "vulns", dirs_exist_ok=True)
    return root


def _audit(tmp: Path, osv: Path, pins: list[tuple[str, str]]) -> Outcome:
    """One audit-gate run (real pip-audit, loopback OSV server) over a lock of ``pins``."""
    root = copy_project(tmp / "project")
    lock = "".join(f"{name}=={version} \\\n    {HASH}\n" for name, version in pins)
    (root / "requirements.lock").write_text(lock, encoding="utf-8")
    (root / "requirements-extras.lock").unlink()  # only the planted lock is under test
    policy = (root / "policy.toml").read_text(encoding="utf-8")
    (root / "policy.toml").write_text(
        policy.replace('locks = ["requirements-extras.lock"]', "locks = []"), encoding="utf-8"
    )
    context = RunContext(
        policy=load_policy(root / "policy.toml"), run_id="t", reports_dir=root / "reports"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ADVISORY_DB_ENV, str(osv))
        return AuditGate().run(context)


@pytest.fixture(scope="module")
def planted_audit(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    tmp = tmp_path_factory.mktemp("osv-attacks")
    return _audit(tmp, _attack_osv(tmp / "osv"), [(p, v) for _, p, v, _ in PLANTED])


@pytest.mark.slow  # shares one audit-gate run (real pip-audit, a few seconds)
@pytest.mark.parametrize(
    ("package", "version", "vuln"),
    [case[1:] for case in PLANTED],
    ids=[case[0] for case in PLANTED],
)
def test_planted_version_fails_the_audit_gate(
    planted_audit: Outcome, package: str, version: str, vuln: str
) -> None:
    assert planted_audit.status is Status.FAILED
    line = 1 + 2 * [p for _, p, _, _ in PLANTED].index(package)
    found = [
        f
        for f in planted_audit.findings
        if f.rule == "AUD001"
        and f.message.startswith(f"requirements.lock:{line}: {package}=={version}: {vuln}")
    ]
    assert len(found) == 1, [f.message for f in planted_audit.findings]
    assert found[0].location is not None
    assert (found[0].location.path, found[0].location.line) == ("requirements.lock", line)


@pytest.mark.slow
def test_planted_audit_reports_nothing_else(planted_audit: Outcome) -> None:
    rules = sorted({f.rule for f in planted_audit.findings} - {"AUD007"})  # AUD007: old fixture
    assert rules == ["AUD001"]
    assert planted_audit.metrics["canary_reported"] is True
    assert planted_audit.metrics["audited"] == len(PLANTED)
    # A record that could not be evaluated says so where the reviewer reads it.
    date = next(f for f in planted_audit.findings if "ATTACK-2024-0008" in f.message)
    assert "fixed '2019-09-12' is not a PEP 440 version" in date.message


@pytest.mark.parametrize(
    ("package", "version", "vuln"),
    [case[1:] for case in PLANTED],
    ids=[case[0] for case in PLANTED],
)
def test_planted_version_is_affected_in_process(package: str, version: str, vuln: str) -> None:
    db = AdvisoryDb(ATTACKS)  # the planted folder alone is an advisory directory
    assert [r["id"] for r in db.query(package, version)] == [vuln]


# --- Records that break the schema's shape: never "clean", always an error naming the file ---

_RECORD_HEAD = "id: BAD-1\nmodified: '2024-06-01T00:00:00Z'\n"
_AFFECTED = "affected:\n- package:\n    name: attack-bad\n    ecosystem: PyPI\n"
MALFORMED = [
    (
        "schema-version-2",
        "schema_version: 2.0.0\n" + _AFFECTED + "  versions: ['1.0']\n",
        "schema_version '2.0.0': only OSV schema 1.x",
    ),
    (
        "two-kinds-in-one-event",
        _AFFECTED + "  ranges:\n  - type: ECOSYSTEM\n    events:\n"
        "    - {introduced: '0', fixed: '2.0'}\n",
        "affected[0].ranges[0].events[0]: an event must be a mapping with exactly one",
    ),
    (
        "unknown-event-kind",
        _AFFECTED + "  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: '0'\n"
        "    - patched: '2.0'\n",
        "affected[0].ranges[0].events[1]: unknown event kind 'patched'",
    ),
    (
        "unknown-range-type",
        _AFFECTED + "  ranges:\n  - type: PEP440\n    events:\n    - introduced: '0'\n",
        "affected[0].ranges[0].type: 'PEP440' is not one of",
    ),
    (
        "range-without-introduced",
        _AFFECTED + "  ranges:\n  - type: ECOSYSTEM\n    events:\n    - fixed: '2.0'\n",
        "affected[0].ranges[0].events: no 'introduced' event",
    ),
    (
        "event-value-not-a-string",
        _AFFECTED + "  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: ['0']\n",
        "affected[0].ranges[0].events[0].introduced: expected a version string",
    ),
    (
        "range-without-events",
        _AFFECTED + "  ranges:\n  - type: ECOSYSTEM\n    events: []\n",
        "affected[0].ranges[0].events: expected a non-empty list",
    ),
    (
        "versions-not-a-list",
        _AFFECTED + "  versions: '1.0'\n",
        "affected[0].versions: expected a list of strings",
    ),
]


@pytest.mark.parametrize(
    ("body", "message"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_record_is_an_error_naming_the_file(
    tmp_path: Path, body: str, message: str
) -> None:
    record = tmp_path / "osv" / "vulns" / "attack-bad" / "BAD-1.yaml"
    record.parent.mkdir(parents=True)
    record.write_text(_RECORD_HEAD + body, encoding="utf-8")
    with pytest.raises(AdvisoryDbError) as caught:
        AdvisoryDb(tmp_path / "osv").query("attack-bad", "1.0")
    assert str(caught.value).startswith(f"{record}: ")
    assert message in str(caught.value)


@pytest.mark.slow  # one audit-gate run
def test_a_record_pip_audit_would_skip_errors_the_gate(tmp_path: Path) -> None:
    # pip-audit silently skips a record of another OSV major version: served as it was, the
    # audit PASSED. Now the server refuses it and the gate errors, naming the record.
    osv = _attack_osv(tmp_path / "osv")
    record = osv / "vulns" / "attack-bad" / "BAD-1.yaml"
    record.parent.mkdir()
    record.write_text(_RECORD_HEAD + MALFORMED[0][1], encoding="utf-8")
    with pytest.raises(GateError) as caught:
        _audit(tmp_path, osv, [("attack-bad", "1.0")])
    assert f"{record}: schema_version '2.0.0'" in str(caught.value)


def test_http_round_trip(tmp_path: Path) -> None:
    osv = _attack_osv(tmp_path / "osv")
    withdrawn = osv / "vulns" / "attack-zero-dev" / "ATTACK-2024-0099.yaml"
    withdrawn.write_text(
        "id: ATTACK-2024-0099\nwithdrawn: '2024-07-01T00:00:00Z'\n"
        "affected:\n- package: {name: attack-zero-dev, ecosystem: PyPI}\n"
        "  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: '0'\n",
        encoding="utf-8",
    )
    db = AdvisoryDb(osv)
    with serve(db) as url:

        def post(version: str) -> tuple[int, Any]:
            body = {"package": {"name": "attack-zero-dev", "ecosystem": "PyPI"}, "version": version}
            request = urllib.request.Request(  # noqa: S310 - loopback URL made by the test
                url, data=json.dumps(body).encode(), method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as err:
                return err.code, json.loads(err.read())

        status, body = post("0.0.0.dev0")
        assert status == 200
        assert [v["id"] for v in body["vulns"]] == ["ATTACK-2024-0001"]  # not the withdrawn one
        assert post("1.0") == (200, {})
        # A version that cannot be placed in a range is refused, never answered "nothing known".
        status, body = post("not a version")
        assert status == 400
        assert "not a PEP 440 version" in body["error"]
    assert db.errors == [
        "attack-zero-dev==not a version: version 'not a version' is not a PEP 440 version; "
        "cannot evaluate OSV ranges"
    ]


@needs_snapshot
@pytest.mark.parametrize("version", ["0.0.0.dev0", "0.dev0", "0a1", "0.0.0rc1", "0.dev0+local"])
def test_admesh_below_zero_is_affected_in_the_real_snapshot(version: str) -> None:
    # The example: PYSEC-2022-182 says introduced "0", fixed 0.98.5.
    ids = [r["id"] for r in AdvisoryDb(SNAPSHOT).query("admesh", version)]
    assert ids == ["PYSEC-2022-182"]


# --- The evaluator, case by case --------------------------------------------------------------


def _record(*ranges: list[dict[str, str]], versions: list[str] | None = None) -> dict[str, Any]:
    affected: dict[str, Any] = {
        "package": {"name": "Demo_Pkg", "ecosystem": "PyPI"},
        "ranges": [{"type": "ECOSYSTEM", "events": events} for events in ranges],
    }
    if versions is not None:
        affected["versions"] = versions
    return {"id": "CASE-1", "affected": [affected]}


def _ev(**event: str) -> dict[str, str]:
    return event  # one event kind: _ev(fixed="1.0")


ZERO_TO_1 = [_ev(introduced="0"), _ev(fixed="1.0")]
ONE_TO_2 = [_ev(introduced="1.0"), _ev(fixed="2.0")]
LAST_15 = [_ev(introduced="1.0"), _ev(last_affected="1.5")]
CASES: list[tuple[str, dict[str, Any], str, bool]] = [
    # introduced "0" sorts before every version.
    *(
        (f"zero-{v}", _record(ZERO_TO_1), v, True)
        for v in ["0", "0.dev0", "0a1", "0.0.0rc1", "0.0.0.dev0", "0+local", "0.dev0+l", "0.5"]
    ),
    *(
        (f"zero-fix-{v}", _record(ZERO_TO_1), v, exp)
        for v, exp in [
            ("1.0.dev0", True),
            ("1.0rc1", True),
            ("1.0", False),
            ("1.0.0", False),
            ("1.0+local", False),
            ("1.0.post1", False),
            ("1!0.5", False),
        ]
    ),
    # Only introduced "0" is special: "0.0" is the version 0.
    ("zero-point-zero-is-a-version", _record([_ev(introduced="0.0")]), "0.dev0", False),
    # introduced is inclusive, fixed exclusive.
    *(
        (f"introduced-{v}", _record(ONE_TO_2), v, exp)
        for v, exp in [
            ("0.9.post1", False),
            ("1.0.dev0", False),
            ("1.0a1", False),
            ("1.0", True),
            ("1.0.post0", True),
            ("1.0+local", True),
            ("2.0.dev0", True),
            ("2.0", False),
        ]
    ),
    # last_affected is inclusive; a local build of it is affected too.
    *(
        (f"last-affected-{v}", _record(LAST_15), v, exp)
        for v, exp in [
            ("1.5", True),
            ("1.5.0", True),
            ("1.5+local", True),
            ("1.5.post0", False),
            ("1.5.1.dev0", False),
            ("1.6a1", False),
        ]
    ),
    (
        "last-affected-one-version",
        _record([_ev(introduced="1.0"), _ev(last_affected="1.0")]),
        "1.0",
        True,
    ),
    (
        "last-affected-one-version-after",
        _record([_ev(introduced="1.0"), _ev(last_affected="1.0")]),
        "1.0.post1",
        False,
    ),
    # limit: only versions below some limit; "*" is infinity; no limit means "*".
    *(
        (f"limit-{v}", _record([_ev(introduced="0"), _ev(limit="2.0")]), v, exp)
        for v, exp in [("1.9", True), ("2.0.dev0", True), ("2.0", False), ("3.0", False)]
    ),
    ("limit-star", _record([_ev(introduced="0"), _ev(limit="*")]), "9999", True),
    ("two-limits", _record([_ev(introduced="0"), _ev(limit="1.0"), _ev(limit="3.0")]), "2.0", True),
    (
        "two-limits-above",
        _record([_ev(introduced="0"), _ev(limit="1.0"), _ev(limit="3.0")]),
        "3.0",
        False,
    ),
    (
        "limit-with-fixed",
        _record([_ev(introduced="1.0"), _ev(fixed="2.0"), _ev(limit="1.5")]),
        "1.7",
        False,
    ),
    # Several introduced in one range, listed out of order.
    *(
        (
            f"two-intervals-{v}",
            _record(
                [_ev(fixed="2.1"), _ev(introduced="2.0"), _ev(introduced="1.0"), _ev(fixed="1.5")]
            ),
            v,
            exp,
        )
        for v, exp in [("0.9", False), ("1.2", True), ("1.7", False), ("2.0", True), ("2.1", False)]
    ),
    *(
        (
            f"introduced-twice-{v}",
            _record([_ev(introduced="1.0"), _ev(introduced="2.0"), _ev(fixed="3.0")]),
            v,
            exp,
        )
        for v, exp in [("1.5", True), ("2.5", True), ("3.0", False)]
    ),
    # Back-to-back intervals tie at their shared version, whatever order the file lists them in.
    *(
        (
            f"tie-{order}-{v}",
            _record(events),
            v,
            exp,
        )
        for order, events in [
            (
                "introduced-first",
                [_ev(introduced="1.0"), _ev(introduced="2.0"), _ev(fixed="2.0"), _ev(fixed="3.0")],
            ),
            (
                "fixed-first",
                [_ev(introduced="1.0"), _ev(fixed="2.0"), _ev(introduced="2.0"), _ev(fixed="3.0")],
            ),
        ]
        for v, exp in [("1.5", True), ("2.0", True), ("2.5", True), ("3.0", False)]
    ),
    # Several ranges in one entry.
    ("two-ranges-gap", _record(ZERO_TO_1, [_ev(introduced="2.0"), _ev(fixed="2.1")]), "1.5", False),
    (
        "two-ranges-second",
        _record(ZERO_TO_1, [_ev(introduced="2.0"), _ev(fixed="2.1")]),
        "2.0.5",
        True,
    ),
    # Epochs order before everything else.
    *(
        (f"epoch-{v}", _record([_ev(introduced="1!0"), _ev(fixed="1!2.0")]), v, exp)
        for v, exp in [
            ("5.0", False),
            ("1!0", True),
            ("1!1.0", True),
            ("1!2.0", False),
            ("2!0", False),
        ]
    ),
    # Fixed in a post-, pre- or dev-release.
    ("fixed-post-before", _record([_ev(introduced="0"), _ev(fixed="1.0.post1")]), "1.0", True),
    (
        "fixed-post-dev",
        _record([_ev(introduced="0"), _ev(fixed="1.0.post1")]),
        "1.0.post1.dev0",
        True,
    ),
    ("fixed-post-at", _record([_ev(introduced="0"), _ev(fixed="1.0.post1")]), "1.0.post1", False),
    ("fixed-rc-before", _record([_ev(introduced="0"), _ev(fixed="2.0rc1")]), "2.0b9", True),
    ("fixed-rc-dev", _record([_ev(introduced="0"), _ev(fixed="2.0rc1")]), "2.0rc1.dev0", True),
    ("fixed-rc-at", _record([_ev(introduced="0"), _ev(fixed="2.0rc1")]), "2.0rc1", False),
    ("fixed-dev-before", _record([_ev(introduced="0"), _ev(fixed="2.0.dev3")]), "2.0.dev2", True),
    ("fixed-dev-at", _record([_ev(introduced="0"), _ev(fixed="2.0.dev3")]), "2.0a1", False),
    # The versions list: PEP 440 equality, a local build of a listed version, legacy strings.
    *(
        (f"listed-{v}", _record(versions=["1.0", "0.9-doduo"]), v, exp)
        for v, exp in [
            ("1.0", True),
            ("1.0.0", True),
            ("1.0+local", True),
            ("1.0.post0", False),
            ("0.9", False),
        ]
    ),
    # A range that cannot be placed on the line of versions affects every version.
    ("unparsable-fixed", _record([_ev(introduced="0"), _ev(fixed="2019-09-12")]), "9.9", True),
    ("unparsable-introduced", _record([_ev(introduced="r2"), _ev(fixed="3.0")]), "5.0", True),
    (
        "unparsable-last-affected",
        _record([_ev(introduced="0"), _ev(last_affected="x")]),
        "5.0",
        True,
    ),
    ("unparsable-limit", _record([_ev(introduced="1.0"), _ev(limit="later")]), "0.1", True),
]


@pytest.mark.parametrize(
    ("record", "version", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_evaluator_case(record: dict[str, Any], version: str, expected: bool) -> None:
    assert record_affects(record, "demo-pkg", Version(version)) is expected
    assert (
        _RefRecord(record).affects("demo-pkg", Version(version)) is expected
    )  # the reference agrees


def test_what_affects_nothing() -> None:
    everything = [_ev(introduced="0")]
    assert record_affects(_record(everything), "demo-pkg", Version("7"))
    assert not record_affects(
        {**_record(everything), "withdrawn": "2024-01-01T00:00:00Z"}, "demo-pkg", Version("7")
    )
    assert not record_affects(_record(everything), "other-pkg", Version("7"))
    npm = _record(everything)
    npm["affected"][0]["package"]["ecosystem"] = "npm"
    assert not record_affects(npm, "demo-pkg", Version("7"))
    git = {"type": "GIT", "repo": "https://example.invalid/r", "events": everything}
    assert compile_range(git) is None  # needs the commit graph: the versions list covers it
    assert not record_affects(
        {"affected": [{**_record()["affected"][0], "ranges": [git]}]}, "demo-pkg", Version("7")
    )
    semver = {"type": "SEMVER", "events": [_ev(introduced="1.0.0"), _ev(fixed="1.2.3")]}
    assert compile_range(semver) is not None
    assert compile_range(semver).affects(Version("1.2.3rc1"))  # type: ignore[union-attr]
    assert not compile_range(semver).affects(Version("1.2.3"))  # type: ignore[union-attr]


def test_record_error_is_raised_for_shape() -> None:
    with pytest.raises(RecordError, match=r"only OSV schema 1\.x"):
        compile_record({"id": "X", "schema_version": "not-a-version"})
    assert compile_record({"id": "X", "schema_version": "1.7.4"}).packages == ()


# --- The whole snapshot, against a reference written here from the OSV schema ----------------
#
# The schema (https://ossf.github.io/osv-schema/#evaluation): a version is affected when an
# affected[] entry of its package lists it, or when it is below some limit of a range (no limit
# events: "*") and the range's sorted events leave it vulnerable. Written here differently from
# gates.osv_eval on purpose: each event is a point on the line of versions (introduced and fixed
# at their version, last_affected just after it, introduced "0" before everything); the point
# highest among those at or below the version decides, and at one point an introduced wins.
# The same documented choices: a range with a version that is not PEP 440 affects everything,
# a local version is judged as itself and as its public version, GIT ranges and withdrawn
# records affect nothing.


@functools.cache
def _ref_parse(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


class _RefRange:
    """One ECOSYSTEM or SEMVER range for the reference, its event versions parsed once."""

    def __init__(self, range_: dict[str, Any]) -> None:
        self.bounds: list[tuple[str, Version | None]] = []  # None: introduced "0"
        self.limits: list[Version] = []
        self.infinite = False  # a "*" limit
        self.broken = False  # a version that is not PEP 440
        for event in range_["events"]:
            ((kind, text),) = event.items()
            parsed = _ref_parse(text)
            if kind == "introduced" and text == "0":
                self.bounds.append((kind, None))
            elif kind == "limit" and "*" in text:
                self.infinite = True
            elif parsed is None:
                self.broken = True
            elif kind == "limit":
                self.limits.append(parsed)
            else:
                self.bounds.append((kind, parsed))

    def affects(self, version: Version) -> bool:
        if self.broken:
            return True
        if self.limits and not self.infinite and all(version >= x for x in self.limits):
            return False
        reached: list[tuple[tuple[Any, ...], str]] = []
        for kind, bound in self.bounds:
            if bound is None:
                reached.append(((0,), kind))
            elif kind == "last_affected" and version > bound:
                reached.append(((1, bound, 1), kind))
            elif kind != "last_affected" and version >= bound:
                reached.append(((1, bound, 0), kind))
        if not reached:
            return False
        top = max(point for point, _ in reached)
        return any(kind == "introduced" for point, kind in reached if point == top)


class _RefRecord:
    """One record for the reference: its PyPI entries, each with its listed versions parsed."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.withdrawn = "withdrawn" in record
        self.entries = [
            (
                canonicalize_name(affected["package"]["name"]),
                {_ref_parse(v) for v in affected.get("versions") or []} - {None},
                [_RefRange(r) for r in affected.get("ranges") or [] if r["type"] != "GIT"],
            )
            for affected in record.get("affected") or []
            if affected["package"]["ecosystem"] == "PyPI"
        ]

    def affects(self, name: str, version: Version) -> bool:
        if self.withdrawn:
            return False
        judged = [version] if version.local is None else [version, Version(version.public)]
        return any(
            candidate in listed or any(r.affects(candidate) for r in ranges)
            for package, listed, ranges in self.entries
            if package == name
            for candidate in judged
        )


_ZERO = [
    "0",
    "0.dev0",
    "0a1",
    "0.0.0rc1",
    "0.0.0.dev0",
    "0+local",
    "0.dev0+local",
    "0.post0",
    "1!0.dev0",
]


def _around(text: str) -> set[Version]:
    """Versions at and around one event's version: pre-, dev-, post-releases, epochs, locals."""
    if text == "0":
        return {Version(v) for v in _ZERO}
    bound = _ref_parse(text)
    if bound is None:
        return {Version("0"), Version("1.0"), Version("9999")}
    epoch = f"{bound.epoch}!" if bound.epoch else ""
    release = bound.release
    base = bound.base_version
    near = [
        (*release[:-1], release[-1] + 1),
        *([(*release[:-1], release[-1] - 1)] if release[-1] > 0 else []),
        (*release, 1),
    ]
    texts = [
        str(bound),
        base,
        f"{base}.0",
        f"{base}.dev0",
        f"{base}a0",
        f"{base}rc1",
        f"{base}.post0",
        f"{base}.post1.dev0",
        f"{base}+local",
        f"{bound}+local",
        f"{bound}.dev0",
        f"{bound}.post0",
        f"{bound.epoch + 1}!{'.'.join(map(str, release))}",
        *(f"{epoch}{'.'.join(map(str, r))}" for r in near),
        *(f"{epoch}{'.'.join(map(str, r))}.dev0" for r in near),
    ]
    if bound.epoch:
        texts.append(".".join(map(str, release)))
    return {v for v in map(_ref_parse, texts) if v is not None}


@pytest.fixture(scope="module")
def snapshot_records() -> list[tuple[Path, dict[str, Any]]]:
    if not SNAPSHOT.is_dir():
        pytest.skip("no ../shared/advisory-db beside the checkout")
    loaded = []
    for path in sorted((SNAPSHOT / "vulns").glob("*/*.yaml")):
        loaded.append((path, yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)))  # noqa: S506 - BaseLoader builds only str/list/dict
    return loaded


def _pypi_entries(record: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for affected in record.get("affected") or []:
        if affected["package"]["ecosystem"] == "PyPI":
            yield canonicalize_name(affected["package"]["name"]), affected


@pytest.mark.slow  # every record of the advisory snapshot
def test_snapshot_every_listed_version_is_reported(
    snapshot_records: list[tuple[Path, dict[str, Any]]],
) -> None:
    assert len(snapshot_records) > 2000
    missed, withdrawn, checked = [], 0, 0
    for path, record in snapshot_records:
        advisory = compile_record(record)
        if advisory.withdrawn:
            withdrawn += 1
        for name, affected in _pypi_entries(record):
            for text in affected.get("versions") or []:
                version = _ref_parse(text)
                if version is None:
                    continue  # a legacy string pip cannot install (paramiko "0.9-doduo")
                checked += 1
                # A withdrawn record is reported for nothing; every other one for its list.
                if advisory.affects(name, version) is not (not advisory.withdrawn):
                    missed.append(f"{path.name}: {name} {text}")
    assert checked > 100_000
    assert withdrawn > 0
    assert withdrawn == sum("withdrawn" in r for _, r in snapshot_records)
    assert missed == []


@pytest.mark.slow  # every record of the advisory snapshot
def test_snapshot_ranges_agree_with_the_reference_around_every_boundary(
    snapshot_records: list[tuple[Path, dict[str, Any]]],
) -> None:
    disagree, checked = [], 0
    for path, record in snapshot_records:
        advisory, reference = compile_record(record), _RefRecord(record)
        for name, affected in _pypi_entries(record):
            for range_ in affected.get("ranges") or []:
                if range_["type"] == "GIT":
                    continue
                compiled, ref_range = compile_range(range_), _RefRange(range_)
                assert compiled is not None
                versions = set().union(*(_around(next(iter(e.values()))) for e in range_["events"]))
                for version in versions:
                    checked += 1
                    if compiled.affects(version) is not ref_range.affects(version):
                        disagree.append(f"{path.name}: range {range_['events']} at {version}")
                    if advisory.affects(name, version) is not reference.affects(name, version):
                        disagree.append(f"{path.name}: record at {version}")
    assert checked > 50_000
    assert disagree[:20] == []
