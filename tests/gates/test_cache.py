"""The gate cache: hits on unchanged inputs, misses on any change, tamper-proof, fail-closed."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from gates import cache as gate_cache
from gates.base import Status
from gates.registry import spec
from tests.chain_support import SUPPLY_CHAIN
from tests.conftest import Project
from tests.project_support import clear_of_utc_midnight

# Each test runs the chain, often twice or more. Every gate is the registered one with its own
# cache key; where a key misses, lint, sast and audit replay the real outcome recorded this
# session unless anything they read changed, in which case ruff, bandit and pip-audit run
# (tests/chain_support.py). Data, train and cv always run. Whole chains, again and again: the
# module is end to end (``nox -s slow``).
pytestmark = pytest.mark.slow

CACHED = ("lint", "sast", "audit", "data", "train", "cv", "risk", "serve")


@pytest.fixture(autouse=True)
def _clean_cache_env(monkeypatch):
    for name in (gate_cache.NO_CACHE_ENV, gate_cache.CACHE_DIR_ENV, gate_cache.HMAC_KEY_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _one_utc_date():
    # The audit's key holds today's UTC date: a test that runs twice and expects the audit
    # reused must not have midnight between its runs (a test here takes well under 5 min).
    clear_of_utc_midnight(300)


@pytest.fixture
def cached(passed_chain, tmp_path):
    """A copy of a project on which the real chain passed with the cache on (``passed_chain``):
    its first ``run`` reuses every cacheable gate."""
    from datetime import UTC, datetime

    from tests.chain_support import copy_run

    project = Project(copy_run(passed_chain, tmp_path / "project"), recorded=passed_chain)
    assert set(entries(project)) == set(CACHED)
    # The session's chain ran before midnight UTC (a long session): its audit entry is keyed
    # on yesterday, and no run reuses it today. Store today's entries in this copy first.
    started = datetime.fromisoformat(project.report("audit")["started"]).astimezone(UTC)
    if started.date() != datetime.now(UTC).date():
        assert run(project).exit_code == 0
    return project


def open_run_before(project, gate):
    """Open a run and pass the gates registered before ``gate`` (a later gate joins that run):
    lint, sast and audit replay their real outcome on this code (``Project.open_run``)."""
    project.open_run(gate)
    assert (project.root / "reports" / "run.json").is_file()


def run(project, *gates, read_cache=True):
    from gates.runner import run_chain

    return run_chain(
        list(gates),
        gates=project.chain(SUPPLY_CHAIN),
        policy=project.load(),
        reports_dir=project.root / "reports",
        out=io.StringIO(),
        use_cache=True,
        read_cache=read_cache,
    )


def reused(summary) -> dict[str, bool]:
    return {r.gate: "reused_from" in r.metrics.get("cache", {}) for r in summary.results}


def entries(project) -> dict[str, Path]:
    """Cache entries by gate name (the last stored one per gate)."""
    found = {}
    for path in sorted((project.root / ".cache" / "gates").glob("*.json")):
        body = json.loads(path.read_text())["body"]
        found[body["gate"]] = path
    return found


def test_an_unchanged_run_reuses_each_cacheable_gate_stamped_for_the_new_run(project):
    first = run(project)
    assert first.exit_code == 0
    assert not any(reused(first).values())
    second = run(project)
    assert second.exit_code == 0
    assert second.run_id != first.run_id
    hits = reused(second)
    assert all(hits[name] for name in CACHED)
    # The verdict is never cached; artifacts declares itself uncacheable (it names the commit).
    assert not hits["gate"]
    assert not hits["artifacts"]
    for name in CACHED:
        report = project.report(name)
        assert report["run_id"] == second.run_id
        assert report["summary"].startswith(f"reused from run {first.run_id}: ")
        assert report["metrics"]["cache"]["reused_from"] == first.run_id
    assert project.report("gate")["status"] == "PASSED"


def test_a_policy_change_invalidates_every_gate(cached):
    # ``cached`` is a copy in another folder: the gates name what they read by absolute path,
    # and the keys must not change with it.
    first = reused(run(cached))
    assert all(first[name] for name in CACHED), first
    cached.edit_policy(**{"cv.folds": 4})
    summary = run(cached)
    assert summary.exit_code == 0
    assert not any(reused(summary).values())
    assert len(cached.report("cv")["metrics"]["accuracy"]["folds"]) == 4


def test_a_threshold_change_reruns_every_gate(cached):
    run(cached)
    cached.edit_policy(**{"cv.thresholds.accuracy.min_mean": 0.94})
    hits = reused(run(cached))
    # The policy digest is an input of every gate: data and train run again too (conservative).
    assert not any(hits.values())


def test_a_new_installed_package_invalidates_the_cache(cached, tmp_path, monkeypatch):
    run(cached)
    site = tmp_path / "site"
    (site / "newtool-9.9.dist-info").mkdir(parents=True)
    monkeypatch.syspath_prepend(str(site))
    gate_cache.environment_digest.cache_clear()
    try:
        summary = run(cached)
    finally:
        gate_cache.environment_digest.cache_clear()
    assert not any(reused(summary).values())


def test_a_changed_project_source_file_invalidates_the_cache(cached):
    run(cached)
    (cached.root / "helper.py").write_text("X = 1\n")
    assert not any(reused(run(cached)).values())


def test_a_cached_fail_stays_fail(project):
    project.edit_policy(**{"cv.thresholds.accuracy.min_mean": 0.999})
    first = run(project)
    assert first.exit_code == 1
    assert project.report("cv")["status"] == "FAILED"
    second = run(project)
    assert second.exit_code == 1
    cv = project.report("cv")
    assert cv["status"] == "FAILED"
    assert cv["metrics"]["cache"]["reused_from"] == first.run_id
    # CV001 is the missed bar; CV021 notes that there is no champion to compare with.
    errors = [f["rule"] for f in cv["findings"] if f.get("severity", "error") == "error"]
    assert errors == ["CV001"]
    assert project.report("gate")["status"] == "FAILED"


def test_an_errored_gate_is_never_cached(project, monkeypatch):
    from gates.data_integrity import DataGate

    original = DataGate.run

    def boom(self, context):
        raise MemoryError("out of memory")

    monkeypatch.setattr(DataGate, "run", boom)
    open_run_before(project, "data")
    assert run(project, "data").results[0].status is Status.ERRORED
    assert "data" not in entries(project)
    monkeypatch.setattr(DataGate, "run", original)
    result = run(project, "data").results[0]
    assert result.status is Status.PASSED
    assert "reused_from" not in result.metrics["cache"]


def test_a_tampered_entry_is_ignored_and_the_gate_runs(project):
    project.edit_policy(**{"cv.thresholds.accuracy.min_mean": 0.999})
    run(project)
    path = entries(project)["cv"]
    document = json.loads(path.read_text())
    document["body"]["outcome"]["status"] = "PASSED"
    document["body"]["outcome"]["findings"] = []
    path.write_text(json.dumps(document))
    summary = run(project)
    cv = project.report("cv")
    assert cv["status"] == "FAILED"
    assert "reused_from" not in cv["metrics"]["cache"]
    assert summary.exit_code == 1


def test_a_resealed_entry_under_another_key_is_ignored(cached):
    # Copying a PASSED entry over the key of a FAILED one is caught: the body names its key.
    run(cached)
    passed = json.loads(entries(cached)["cv"].read_text())
    cached.edit_policy(**{"cv.thresholds.accuracy.min_mean": 0.999})
    run(cached)
    failed_path = entries(cached)["cv"]
    failed_path.write_text(json.dumps(passed))
    run(cached)
    assert cached.report("cv")["status"] == "FAILED"


def test_a_hmac_key_rejects_entries_sealed_without_it(cached, monkeypatch):
    run(cached)
    monkeypatch.setenv(gate_cache.HMAC_KEY_ENV, "ci-secret")
    assert not any(reused(run(cached)).values())
    second = reused(run(cached))
    assert all(second[name] for name in CACHED), second
    monkeypatch.setenv(gate_cache.HMAC_KEY_ENV, "another-secret")
    assert not any(reused(run(cached)).values())


def test_a_deleted_model_is_restored_from_the_cache_and_verified(cached):
    run(cached)
    model = cached.root / "artifacts" / "model.skops"
    digest = gate_cache.sha256_file(model)
    model.unlink()
    (cached.root / "artifacts" / "model.manifest.json").unlink()
    summary = run(cached)
    assert summary.exit_code == 0
    assert reused(summary)["train"]
    assert gate_cache.sha256_file(model) == digest


def test_a_tampered_stored_model_is_not_restored(cached):
    run(cached)
    model = cached.root / "artifacts" / "model.skops"
    digest = gate_cache.sha256_file(model)
    stored = cached.root / ".cache" / "gates" / "objects" / digest
    stored.write_bytes(b"not the model")
    model.unlink()
    summary = run(cached)
    assert summary.exit_code == 0
    assert not reused(summary)["train"]
    assert model.read_bytes() != b"not the model"


def test_a_new_model_changes_the_cv_key(cached):
    from gates.base import RunContext
    from gates.runner import input_digests

    summary = run(cached)
    policy = cached.load()
    context = RunContext(policy=policy, run_id=summary.run_id, reports_dir=cached.root / "reports")
    inputs = input_digests(policy)
    before = gate_cache.compute_key(spec("cv"), context, inputs)
    model = cached.root / "artifacts" / "model.skops"
    model.write_bytes(model.read_bytes() + b"\0")
    after = gate_cache.compute_key(spec("cv"), context, inputs)
    assert before.digest != after.digest
    assert before.material["upstream_files"] != after.material["upstream_files"]


def test_read_cache_false_runs_everything_and_refreshes(cached):
    run(cached)
    summary = run(cached, read_cache=False)
    assert not any(reused(summary).values())
    second = reused(run(cached))
    assert all(second[name] for name in CACHED), second


def test_policy_cache_false_neither_reads_nor_writes(project):
    project.edit_policy(**{"run.cache": False})
    run(project)
    assert not any(reused(run(project)).values())
    assert not (project.root / ".cache").exists()


def test_what_a_gate_declares_it_reads_is_part_of_its_key(project, monkeypatch):
    from gates.base import Reads
    from gates.data_integrity import DataGate

    version = {"tool": "1.0"}
    monkeypatch.setattr(DataGate, "reads", lambda self, context: Reads(external=dict(version)))
    open_run_before(project, "data")
    run(project, "data")
    assert reused(run(project, "data"))["data"]
    version["tool"] = "2.0"
    assert not reused(run(project, "data"))["data"]


def test_an_unwritable_cache_does_not_change_the_verdict(project, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(gate_cache.CACHE_DIR_ENV, str(blocker / "cache"))
    assert run(project).exit_code == 0
    assert not any(reused(run(project)).values())


def test_cli_reuses_and_no_cache_flag_and_env_force_a_full_run(cached, gates_cli):
    first = gates_cli(cached.root, "run")
    assert first.returncode == 0, first.stderr
    second = gates_cli(cached.root, "run")
    assert second.returncode == 0
    assert second.stdout.count("reused from run") == len(CACHED)
    forced = gates_cli(cached.root, "run", "--no-cache")
    assert forced.returncode == 0
    assert "reused from run" not in forced.stdout
    by_env = gates_cli(cached.root, "run", env={gate_cache.NO_CACHE_ENV: "1"})
    assert by_env.returncode == 0
    assert "reused from run" not in by_env.stdout


def test_a_warm_run_does_not_import_scikit_learn_or_pandas(cached, gates_cli):
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    assert gates_cli(cached.root, "run").returncode == 0
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    warm = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gates", "run"],
        cwd=cached.root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout.count("reused from run") == len(CACHED)
    imported = {line.rsplit("|", 1)[-1].strip() for line in warm.stderr.splitlines()}
    assert "sklearn" not in imported
    assert "pandas" not in imported


def test_a_new_champion_invalidates_the_cached_cv_outcome(project):
    from gates.base import RunContext
    from gates.registry import NAMES
    from gates.runner import input_digests

    summary = run(project, *NAMES[: NAMES.index("cv")])
    assert summary.exit_code == 0
    policy = project.load()
    context = RunContext(policy=policy, run_id=summary.run_id, reports_dir=project.root / "reports")
    inputs = input_digests(policy)
    before = gate_cache.compute_key(spec("cv"), context, inputs)
    pointer = project.root / "registry" / "champion"
    pointer.parent.mkdir(parents=True)
    pointer.write_text('{"version": "v1"}')
    assert gate_cache.compute_key(spec("cv"), context, inputs).digest != before.digest


def _drop_last_row_and_approve(project):
    lines = project.data_path.read_text(encoding="utf-8").splitlines(keepends=True)
    project.data_path.write_text("".join(lines[:-1]), encoding="utf-8")
    project.approve()


def test_new_approved_data_reruns_the_data_gate_on_but_reuses_the_supply_chain_gates(cached):
    run(cached)
    _drop_last_row_and_approve(cached)
    summary = run(cached)
    assert summary.exit_code == 0
    hits = reused(summary)
    # ruff, bandit and pip-audit read no data: their keys leave its digests out.
    assert all(hits[name] for name in SUPPLY_CHAIN)
    assert not any(hits[name] for name in ("data", "train", "cv"))
    # The reused reports are stamped with this run's inputs, so the verdict judges them as usual.
    data_inputs = cached.report("data")["inputs"]
    for name in SUPPLY_CHAIN:
        assert cached.report(name)["inputs"] == data_inputs
    assert cached.report("gate")["status"] == "PASSED"


def test_any_file_in_a_scanner_scope_changes_its_key_whatever_its_suffix(cached):
    run(cached)
    # Not a .py file, and under tests/ (lint's scope, not sast's): only ruff could read it.
    (cached.root / "tests" / "notes.ipynb").write_text("{}", encoding="utf-8")
    hits = reused(run(cached))
    assert not hits["lint"]


def test_the_digest_memo_skips_unchanged_files_but_sees_an_edit_with_its_mtime_put_back(
    project, monkeypatch
):
    # Remember files written a moment ago (the project was just copied), and start each run
    # with the memo as a new process would load it from the cache folder.
    monkeypatch.setattr(gate_cache.DigestMemo, "settle_ns", -(10**12))
    monkeypatch.setattr(gate_cache, "_memos", {})
    notes = project.root / "tests" / "notes.txt"  # in ruff's scope; ruff reads no .txt
    notes.write_text("one\n", encoding="utf-8")
    run(project)
    store = project.root / ".cache" / "gates" / gate_cache.MEMO_FILE
    remembered = json.loads(store.read_text(encoding="utf-8"))["body"]["entries"]
    assert str(notes.resolve()) in remembered
    monkeypatch.setattr(gate_cache, "_memos", {})
    second = reused(run(project))
    assert all(second[name] for name in CACHED), second
    # Same size, mtime set back (``touch -r``): a memo keyed on size and mtime alone would
    # reuse ruff's old outcome. ctime moved, so the file is read again and lint re-runs.
    before = notes.stat()
    notes.write_text("two\n", encoding="utf-8")
    os.utime(notes, ns=(before.st_atime_ns, before.st_mtime_ns))
    monkeypatch.setattr(gate_cache, "_memos", {})
    hits = reused(run(project))
    assert not hits["lint"]
    assert hits["sast"]  # tests/ is not in bandit's scope


def test_a_new_bandit_baseline_reruns_sast(cached):
    run(cached)
    cached.edit_policy(**{"sast.baseline": "bandit-baseline.json"})
    baseline = cached.root / "bandit-baseline.json"
    baseline.write_text('{"results": []}', encoding="utf-8")
    assert run(cached).exit_code == 0
    assert reused(run(cached))["sast"]
    baseline.write_text('{"results": [], "generated_at": "later"}', encoding="utf-8")
    summary = run(cached)
    assert not reused(summary)["sast"]
    assert summary.exit_code == 0


def test_a_changed_advisory_snapshot_reruns_the_audit(cached, tmp_path, monkeypatch):
    import shutil

    from tests.project_support import ADVISORY_DB_ENV, OSV_FIXTURE

    snapshot = tmp_path / "osv"
    shutil.copytree(OSV_FIXTURE, snapshot)
    monkeypatch.setenv(ADVISORY_DB_ENV, str(snapshot))
    run(cached)
    assert reused(run(cached))["audit"]
    record = next(snapshot.rglob("*.yaml"))
    record.write_text(record.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert not reused(run(cached))["audit"]


def test_the_audit_key_names_today_so_waivers_and_snapshot_age_are_judged_again_tomorrow(
    project, monkeypatch
):
    from datetime import UTC, datetime

    from gates import audit
    from gates.base import RunContext

    context = RunContext(policy=project.load(), run_id="r", reports_dir=project.root / "reports")
    today = audit.AuditGate().reads(context).external
    assert today["today"] == datetime.now(UTC).date().isoformat()

    class Tomorrow(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2099, 1, 2, tzinfo=tz or UTC)

    monkeypatch.setattr(audit, "datetime", Tomorrow)
    assert audit.AuditGate().reads(context).external["today"] == "2099-01-02"


def test_the_audit_against_the_live_service_is_never_reused(project, monkeypatch):
    from gates import audit
    from gates.base import RunContext
    from tests.project_support import ADVISORY_DB_ENV

    monkeypatch.delenv(ADVISORY_DB_ENV, raising=False)
    project.edit_policy(**{"audit.advisory_db": "../no-such-snapshot"})
    context = RunContext(policy=project.load(), run_id="r", reports_dir=project.root / "reports")
    assert audit.choose_source(context).path is None
    assert not audit.AuditGate().reads(context).reusable
    assert not gate_cache.reusable(spec("audit"), context)
    assert gate_cache.reusable(spec("lint"), context)


def test_rerun_from_runs_that_gate_and_later_ones_but_reuses_earlier(cached):
    from gates.runner import run_chain

    run(cached)
    summary = run_chain(
        [],
        gates=cached.chain(SUPPLY_CHAIN),
        policy=cached.load(),
        reports_dir=cached.root / "reports",
        out=io.StringIO(),
        use_cache=True,
        rerun_from="data",
    )
    assert summary.exit_code == 0
    hits = reused(summary)
    assert all(hits[name] for name in SUPPLY_CHAIN)
    assert not any(hits[name] for name in ("data", "train", "cv"))
    # The fresh outcomes refresh the cache: the next plain run reuses them.
    second = reused(run(cached))
    assert all(second[name] for name in CACHED), second


def test_rerun_from_an_unknown_gate_is_a_usage_error(project, gates_cli):
    done = gates_cli(project.root, "run", "--rerun-from", "nope")
    assert done.returncode == 2
    assert "--rerun-from: unknown gate 'nope'" in done.stderr
    assert "Traceback" not in done.stderr


def test_scanner_reports_list_their_files_by_path_and_digest(cached):
    run(cached)
    for name in SUPPLY_CHAIN:
        artifacts = cached.report(name)["artifacts"]
        assert artifacts, name
        for rel, digest in artifacts.items():
            assert rel.startswith("reports/"), rel
            assert gate_cache.sha256_file(cached.root / rel) == digest


def test_the_source_walk_counts_what_an_import_or_a_tool_can_read(tmp_path):
    # The walk behind every key (gates.cache._project_sources), on the names it must tell
    # apart: modules everywhere an import reaches, configuration outside output folders, no
    # hidden folder or virtual environment, a symlinked folder not followed, a skipped output
    # folder reached by its real path, and PurePath's idea of a suffix.
    for rel in (
        "a.py", "a.b.py", "..py", ".py", "x.", "x.toml", "Jenkinsfile", "notes.md",
        "data/x.py", "data/x.toml", "data/sub/m.py", "data/sub/y.yml", "build/knob.py",
        "build/k.cfg", ".hidden/h.py", "env/pyvenv.cfg", "env/e.py", "venv/lib/v.py",
        "pkg/__pycache__/c.py", "pkg/__pycache__/c.toml", "out/o.py", "out/o.toml",
        "weird dir/w.ini", "deep/data2/z.yaml",
    ):  # fmt: skip
        path = tmp_path / "project" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    root = tmp_path / "project"
    (root / "link").symlink_to(root / "pkg")
    (root / "flink.py").symlink_to(root / "a.py")
    (root / "broken.py").symlink_to(root / "absent")
    os.mkfifo(root / "fifo.toml")
    (tmp_path / "via").symlink_to(root)  # the project named through a symlink
    for top in (root, tmp_path / "via"):
        found = sorted(label for label, _ in gate_cache._project_sources(top, {root / "out"}))
        assert found == [
            "..py", "Jenkinsfile", "a.b.py", "a.py", "broken.py", "build/knob.py",
            "data/sub/m.py", "data/x.py", "deep/data2/z.yaml", "fifo.toml", "flink.py",
            "out/o.py", "pkg/__pycache__/c.py", "venv/lib/v.py", "weird dir/w.ini", "x.toml",
        ]  # fmt: skip
