"""The local OSV advisory directory: range matching, snapshot date, and the loopback server."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from packaging.version import Version

from gates.osv_eval import range_affects, record_affects
from gates.osv_server import AdvisoryDb, AdvisoryDbError, serve

OSV = Path(__file__).resolve().parent.parent / "assets" / "osv"


def _range(kind: str, *events: dict[str, str]) -> dict[str, object]:
    return {"type": kind, "events": list(events)}


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.1", True), ("2.19.1", True), ("2.20.0", False), ("3.0", False)],
)
def test_ecosystem_introduced_fixed(version: str, expected: bool) -> None:
    rng = _range("ECOSYSTEM", {"introduced": "0"}, {"fixed": "2.20.0"})
    assert range_affects(Version(version), rng) is expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.9", False), ("1.10", True), ("1.24.1", True), ("1.24.2", False)],
)
def test_semver_last_affected(version: str, expected: bool) -> None:
    rng = _range("SEMVER", {"introduced": "1.10"}, {"last_affected": "1.24.1"})
    assert range_affects(Version(version), rng) is expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.0", True), ("1.5", False), ("2.0", True), ("2.1", False), ("0.9", False)],
)
def test_two_intervals_in_any_order(version: str, expected: bool) -> None:
    # Events arrive unordered; OSV says to sort them by version before evaluating.
    rng = _range(
        "ECOSYSTEM",
        {"fixed": "2.1"},
        {"introduced": "2.0"},
        {"introduced": "1.0"},
        {"fixed": "1.5"},
    )
    assert range_affects(Version(version), rng) is expected


def test_git_ranges_affect_nothing_and_unparsable_versions_affect_everything() -> None:
    assert not range_affects(Version("1.0"), _range("GIT", {"introduced": "0"}))
    # A range that cannot be placed on the line of versions is never read as "clean".
    assert range_affects(
        Version("1.0"), _range("ECOSYSTEM", {"introduced": "0"}, {"fixed": "not a version"})
    )


def test_versions_list_and_package_name_are_matched_canonically() -> None:
    record = {
        "affected": [{"package": {"name": "PyYAML", "ecosystem": "PyPI"}, "versions": ["5.3"]}]
    }
    assert record_affects(record, "pyyaml", Version("5.3"))
    assert record_affects(record, "pyyaml", Version("5.3.0"))
    assert not record_affects(record, "pyyaml", Version("5.4"))
    assert not record_affects(record, "requests", Version("5.3"))
    npm = {"affected": [{"package": {"name": "pyyaml", "ecosystem": "npm"}, "versions": ["5.3"]}]}
    assert not record_affects(npm, "pyyaml", Version("5.3"))


def test_query_and_snapshot_of_the_fixture() -> None:
    db = AdvisoryDb(OSV)
    assert [r["id"] for r in db.query("joblib", "1.1.0")] == ["PYSEC-2022-288"]
    assert db.query("joblib", "1.2.0") == []
    assert [r["id"] for r in db.query("URLLIB3", "1.24.1")] == ["TEST-2024-0002"]
    assert db.query("numpy", "1.0") == []
    snapshot = db.snapshot()
    assert snapshot.records == 4
    assert snapshot.newest_modified == datetime(2024, 6, 30, 8, 30, 0, 500000, tzinfo=UTC)


def test_not_an_advisory_directory(tmp_path: Path) -> None:
    with pytest.raises(AdvisoryDbError, match="not an advisory database"):
        AdvisoryDb(tmp_path)
    (tmp_path / "vulns").mkdir()
    with pytest.raises(AdvisoryDbError, match="no package folders"):
        AdvisoryDb(tmp_path)


def _post(url: str, payload: object) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(  # noqa: S310 - loopback URL made by the test
        url, data=json.dumps(payload).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_server_answers_like_the_osv_api(tmp_path: Path) -> None:
    root = tmp_path / "osv"
    shutil.copytree(OSV, root)
    (root / "vulns" / "requests" / "BAD.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    with serve(AdvisoryDb(root)) as url:
        assert url.startswith("http://127.0.0.1:")
        status, body = _post(
            url, {"package": {"name": "joblib", "ecosystem": "PyPI"}, "version": "1.1.0"}
        )
        assert status == 200
        assert [v["id"] for v in body["vulns"]] == ["PYSEC-2022-288"]  # type: ignore[union-attr]
        assert _post(url, {"package": {"name": "joblib", "ecosystem": "PyPI"}, "version": "9"}) == (
            200,
            {},
        )
        assert _post(url, {"version": "1"})[0] == 400
        assert _post(url.replace("/v1/query", "/v1/other"), {})[0] == 404
        # A record that does not parse is a server error, never an "all clear".
        assert (
            _post(url, {"package": {"name": "requests", "ecosystem": "PyPI"}, "version": "1"})[0]
            == 500
        )
    with pytest.raises(urllib.error.URLError):
        _post(url, {"package": {"name": "joblib", "ecosystem": "PyPI"}, "version": "1.1.0"})


def test_server_stops_when_its_user_fails() -> None:
    seen: list[str] = []

    def use_and_fail() -> None:
        with serve(AdvisoryDb(OSV)) as url:
            seen.append(url)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        use_and_fail()
    with pytest.raises(urllib.error.URLError):
        _post(seen[0], {"package": {"name": "joblib", "ecosystem": "PyPI"}, "version": "1.1.0"})
