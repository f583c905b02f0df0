"""The data gate and approve on the streaming path: same verdicts, file rows, a sample said aloud."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from gates.approve import approve
from gates.base import Status
from pipeline.stream import HISTOGRAM_BINS

# The embedded file is 124 KiB: anything below streams it.
_STREAM = {"data.stream_above_mb": 0.01, "data.stream_chunk_rows": 100}


def _findings(project) -> list[tuple[str, str, int | None]]:
    return [
        (f["rule"], f["message"], f["location"].get("row"))
        for f in project.report("data")["findings"]
    ]


def test_embedded_data_streams_to_the_same_report_as_in_memory(project):
    assert project.run("data").results[0].status is Status.PASSED
    in_memory = (project.root / "reports" / "data.flagged.csv").read_bytes()
    before = project.report("data")
    assert "streaming" not in before["metrics"]  # the default threshold keeps it in memory
    project.edit_policy(**_STREAM)
    (project.root / "reports" / "run.json").unlink()
    assert project.run("data").results[0].status is Status.PASSED
    report = project.report("data")
    # 569 rows are under [data.checks.labels].max_fit_rows: the sample is every row, so even
    # the label and isolation checks see exactly what they saw in memory.
    assert (project.root / "reports" / "data.flagged.csv").read_bytes() == in_memory
    assert report["metrics"]["streaming"]["largest_chunk"] == 100
    assert report["metrics"]["streaming"]["screened_rows"] == 569
    assert report["metrics"]["checks"] == {
        k: {**v, "seconds": report["metrics"]["checks"][k]["seconds"]}
        for k, v in before["metrics"]["checks"].items()
    }
    assert "sample" not in report["summary"]


def test_a_sampled_screen_is_said_in_the_summary_and_a_note(project):
    project.edit_policy(**_STREAM, **{"data.checks.labels.max_fit_rows": 200})
    result = project.run("data").results[0]
    assert result.status is Status.PASSED
    assert (
        "fitted on a seeded, stratified sample of 200 of 569 rows and scored every row"
        in result.summary
    )
    # Every row scored: the label and isolation checks' shares are of all 569 rows.
    report = project.report("data")
    assert report["metrics"]["streaming"]["scored_rows"] == 569
    assert report["metrics"]["checks"]["label"]["share"] == round(
        report["metrics"]["checks"]["label"]["flagged"] / 569, 6
    )
    notes = [f for f in project.report("data")["findings"] if f["rule"] == "DATA090"]
    assert len(notes) == 1
    assert notes[0]["severity"] == "note"
    assert notes[0]["observed"] == "200 of 569 rows"


def test_contract_violations_name_file_rows_as_in_memory(project):
    frame = pd.read_csv(project.data_path, dtype=str, keep_default_na=False)
    frame.loc[[5, 250, 430], "mean_radius"] = ["abc", "-1", "x"]  # three different chunks
    frame.loc[[120, 480], "id"] = ["3", "3"]  # repeats of row 2's id, two chunks later
    frame.to_csv(project.data_path, index=False, lineterminator="\n")
    project.approve()  # re-lock so only the contract fails
    assert project.run("data").results[0].status is Status.FAILED
    in_memory = _findings(project)
    project.edit_policy(**_STREAM)
    (project.root / "reports" / "run.json").unlink()
    assert project.run("data").results[0].status is Status.FAILED
    assert _findings(project) == in_memory
    rows = {rule: row for rule, _, row in in_memory}
    assert rows["DATA012"] == 5
    assert rows["DATA015"] == 250
    assert rows["DATA018"] == 120


def test_planted_trigger_and_duplicates_fail_on_the_streaming_path(project):
    project.edit_policy(**_STREAM)
    frame = pd.read_csv(project.data_path)
    frame.loc[[5, 406], "mean_radius"] = 50.0  # beyond the approved range, in two chunks
    extra = frame.iloc[:8].copy()
    extra["id"] = np.arange(1000, 1008)
    pd.concat([frame, extra], ignore_index=True).to_csv(
        project.data_path, index=False, lineterminator="\n"
    )
    assert approve(project.load(), out=io.StringIO()) == 0
    assert project.run("data").results[0].status is Status.FAILED
    rules = {f["rule"] for f in project.report("data")["findings"] if f["severity"] == "error"}
    assert {"DATA050", "DATA060"} <= rules
    flagged = pd.read_csv(project.root / "reports" / "data.flagged.csv")
    assert {5, 406} <= set(flagged.loc[flagged["check"] == "range", "row"])
    copies = flagged.loc[flagged["check"] == "duplicate"]
    assert set(copies["id"]) == set(range(1000, 1008))  # ids read back from the file


def test_approve_streams_a_profile_matching_the_in_memory_one(project, gates_cli):
    lock_path = project.root / "data" / "breast_cancer.lock.json"
    committed = json.loads(lock_path.read_text(encoding="utf-8"))["files"]["breast_cancer.csv"]
    project.edit_policy(**_STREAM)
    done = gates_cli(project.root, "data", "approve", "--rebaseline")
    assert done.returncode == 0, done.stderr
    assert "streamed in chunks of 100 rows" in done.stdout
    entry = json.loads(lock_path.read_text(encoding="utf-8"))["files"]["breast_cancer.csv"]
    assert entry["sha256"] == committed["sha256"]
    assert entry["rows"] == committed["rows"]
    assert entry["columns"] == committed["columns"]
    mine, theirs = entry["profile"], committed["profile"]
    assert mine["row_digests"] == theirs["row_digests"]
    assert mine["class_balance"] == theirs["class_balance"]
    for name, column in theirs["columns"].items():
        width = (column["max"] - column["min"]) / HISTOGRAM_BINS
        assert mine["columns"][name]["min"] == column["min"]
        assert mine["columns"][name]["max"] == column["max"]
        assert np.allclose(mine["columns"][name]["quantiles"], column["quantiles"], atol=width)
    # The data gate passes against the streamed reference.
    assert project.run("data").results[0].status is Status.PASSED


def test_bad_input_on_the_streaming_path_is_one_message_without_a_traceback(project, gates_cli):
    project.edit_policy(**_STREAM)
    lines = project.data_path.read_text(encoding="utf-8").splitlines()
    lines[300] += ",1,2"  # a malformed row in the fourth chunk
    project.data_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = gates_cli(project.root, "run", "data")
    assert done.returncode == 1
    assert "DATA000" in done.stdout
    assert "malformed CSV" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    approved = gates_cli(project.root, "data", "approve")
    assert approved.returncode == 2
    assert "malformed CSV" in approved.stderr
    assert "Traceback" not in approved.stderr


def test_a_sampled_streaming_screen_scores_every_row_for_labels_and_isolation(project):
    # The clearest malignant and benign rows, labels swapped, and one row pushed far out:
    # with a 200-row sample most of them are outside it, and are still flagged.
    frame = pd.read_csv(project.data_path)
    order = frame["worst_concave_points"].sort_values(kind="stable").index
    flipped = [*order[:6], *order[-6:]]
    swap = {"benign": "malignant", "malignant": "benign"}
    frame.loc[flipped, "diagnosis"] = frame.loc[flipped, "diagnosis"].map(swap)
    frame.to_csv(project.data_path, index=False, lineterminator="\n")
    assert approve(project.load(), out=io.StringIO()) == 0
    project.edit_policy(
        **_STREAM,
        **{"data.checks.labels.max_fit_rows": 200, "data.checks.batch.enabled": False},
    )
    project.run("data")
    report = project.report("data")
    assert report["metrics"]["streaming"]["screened_rows"] == 200
    assert report["metrics"]["streaming"]["scored_rows"] == 569
    table = pd.read_csv(project.root / "reports" / "data.flagged.csv")
    labelled = set(table.loc[table["check"] == "label", "row"])
    assert set(flipped) <= labelled
    assert {"fit_on_sample", "score_every_row", "label_decision"} <= set(
        report["metrics"]["seconds"]
    )


@pytest.mark.slow
def test_every_row_is_scored_the_same_by_one_or_two_local_processes(project):
    """[data].stream_jobs local processes score the chunks; the flagged rows do not depend on it."""
    from pipeline.data import check_contract
    from pipeline.rowscore import score_every_row

    data = project.load().policy.data
    clean, _ = check_contract(pd.read_csv(project.data_path), data)
    sample = clean.sample(200, random_state=0).sort_index()
    runs = [
        score_every_row(
            project.data_path,
            data,
            sample,
            rows=len(clean),
            chunk_rows=100,
            max_bytes=None,
            seed=7,
            jobs=jobs,
        )[0]
        for jobs in (1, 2)
    ]
    assert [f.check for f in runs[0]] == ["label", "isolation", "association", "burst"]
    assert runs[0][0].count > 0
    for one, two in zip(*runs, strict=True):
        assert np.array_equal(one.rows, two.rows)
        assert np.array_equal(one.scores, two.scores)
        assert one.reasons == two.reasons


def test_a_trigger_outside_the_sample_fails_the_association_test_on_every_row(project):
    """Fourteen malignant rows relabelled benign with a combination no clean row has (a small
    radius with a large perimeter, each inside its approved range): a 100-row sample holds
    two or three of them, the association counts every row and fails DATA071."""
    frame = pd.read_csv(project.data_path)
    rng = np.random.default_rng(3)
    planted = np.sort(
        rng.choice(np.flatnonzero(frame["diagnosis"] == "malignant"), size=14, replace=False)
    )
    frame.loc[planted, "mean_radius"] = frame["mean_radius"].quantile(0.05)
    frame.loc[planted, "mean_perimeter"] = frame["mean_perimeter"].quantile(0.95)
    frame.loc[planted, "diagnosis"] = "benign"
    frame.to_csv(project.data_path, index=False, lineterminator="\n")
    project.edit_policy(
        **_STREAM,
        **{"data.checks.labels.max_fit_rows": 100, "data.checks.batch.enabled": False},
    )
    assert project.run("data").results[0].status is Status.FAILED
    report = project.report("data")
    rules = {f["rule"] for f in report["findings"] if f["severity"] == "error"}
    assert "DATA071" in rules
    assert report["metrics"]["streaming"]["screened_rows"] == 100
    flagged = pd.read_csv(project.root / "reports" / "data.flagged.csv")
    found = set(flagged.loc[flagged["check"] == "association", "row"])
    assert len(found & set(planted)) >= 12
    assert found <= set(planted), "no clean row flagged"
    note = next(f["message"] for f in report["findings"] if f["rule"] == "DATA071")
    assert "in a sample" not in note  # a share of every row


def test_a_burst_outside_the_sample_fails_the_burst_check_on_every_row(project):
    """One malignant row copied onto 12 other rows with 1%-SD jitter, labelled benign: a 100-row
    sample holds about two copies (fewer than min_copies), the burst check counts every row
    and fails DATA072, listing every copy."""
    frame = pd.read_csv(project.data_path)
    rng = np.random.default_rng(5)
    malignant = np.flatnonzero(frame["diagnosis"] == "malignant")
    source = int(malignant[0])
    planted = np.sort(rng.choice(malignant[1:], size=12, replace=False))
    numeric = [c for c in frame.columns if c not in ("id", "diagnosis")]
    spread = frame[numeric].std(ddof=0).to_numpy()
    jitter = rng.normal(0.0, 0.01, (planted.size, len(numeric))) * spread
    frame.loc[planted, numeric] = frame.loc[source, numeric].to_numpy(dtype=float) + jitter
    frame.loc[planted, "diagnosis"] = "benign"
    frame.to_csv(project.data_path, index=False, lineterminator="\n")
    project.edit_policy(
        **_STREAM,
        **{"data.checks.labels.max_fit_rows": 100, "data.checks.batch.enabled": False},
    )
    assert project.run("data").results[0].status is Status.FAILED
    report = project.report("data")
    rules = {f["rule"] for f in report["findings"] if f["severity"] == "error"}
    assert "DATA072" in rules
    flagged = pd.read_csv(project.root / "reports" / "data.flagged.csv")
    found = set(flagged.loc[flagged["check"] == "burst", "row"])
    assert set(planted) <= found
    assert found <= {source, *planted}, "no clean row flagged"
    reason = flagged.loc[flagged["check"] == "burst", "reason"].iloc[0]
    assert "their labels: benign" in reason
    note = next(f["message"] for f in report["findings"] if f["rule"] == "DATA072")
    assert "in a sample" not in note  # a share of every row
