"""The hash-chained history: appends, head hash, and detection of every kind of tampering."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gates.feedback import history

REPO = Path(__file__).resolve().parents[3]


def _fill(path: Path, n: int = 4) -> list[dict]:
    return [
        history.append(path, {"run_id": f"run-{i}", "metrics": {"m": i / 10}}) for i in range(n)
    ]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


@pytest.fixture
def checkpoint_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The secret that seals the verification checkpoint (without it there is no checkpoint)."""
    monkeypatch.setenv(history.HMAC_KEY_ENV, "test checkpoint key")
    return "test checkpoint key"


def test_appends_chain_each_record_to_the_previous_and_verify_passes(tmp_path):
    path = tmp_path / "runs.jsonl"
    written = _fill(path)
    assert [r["seq"] for r in written] == [0, 1, 2, 3]
    assert written[0]["prev"] == history.GENESIS
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(written))
    assert history.head_hash(path) == written[-1]["hash"]
    result = history.verify(path)
    assert result, result.problems
    assert result.records == 4
    assert result.head == written[-1]["hash"]


def test_empty_history_has_the_genesis_head_and_verifies(tmp_path):
    path = tmp_path / "runs.jsonl"
    assert history.head_hash(path) == history.GENESIS
    assert history.verify(path)


def test_an_edited_record_is_detected(tmp_path):
    path = tmp_path / "runs.jsonl"
    _fill(path)
    path.write_bytes(path.read_bytes().replace(b'"m":0.1', b'"m":0.9'))
    result = history.verify(path)
    assert not result
    assert any(p.line == 2 and "edited" in p.message for p in result.problems)


def test_an_edited_and_rehashed_record_breaks_the_next_link(tmp_path):
    path = tmp_path / "runs.jsonl"
    _fill(path)
    lines = _lines(path)
    record = json.loads(lines[1])
    record["metrics"]["m"] = 0.99
    record["hash"] = history.record_hash(record)
    lines[1] = json.dumps(record).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    result = history.verify(path)
    assert not result
    assert [p.line for p in result.problems if "prev" in p.message] == [3]


def test_a_deleted_record_is_detected(tmp_path):
    path = tmp_path / "runs.jsonl"
    _fill(path)
    lines = _lines(path)
    path.write_bytes(b"".join(lines[:1] + lines[2:]))
    result = history.verify(path)
    assert not result
    assert any("seq" in p.message for p in result.problems)


def test_reordered_records_are_detected(tmp_path):
    path = tmp_path / "runs.jsonl"
    _fill(path)
    lines = _lines(path)
    lines[1], lines[2] = lines[2], lines[1]
    path.write_bytes(b"".join(lines))
    assert not history.verify(path)


def test_truncation_is_detected_by_the_sidecar_and_by_an_expected_head(tmp_path):
    path = tmp_path / "runs.jsonl"
    written = _fill(path)
    lines = _lines(path)
    path.write_bytes(b"".join(lines[:-1]))
    result = history.verify(path)
    assert not result
    assert any("truncated" in p.message for p in result.problems)
    # An attacker who also rewrites the sidecar is still caught by the attested head.
    history.head_path(path).write_text(
        json.dumps({"count": 3, "head": written[2]["hash"]}), encoding="utf-8"
    )
    assert history.verify(path)
    assert not history.verify(path, expect_head=written[-1]["hash"])


def test_a_partly_written_last_record_is_detected_and_blocks_appends(tmp_path):
    path = tmp_path / "runs.jsonl"
    _fill(path)
    path.write_bytes(path.read_bytes()[:-20])
    assert not history.verify(path)
    with pytest.raises(history.HistoryError, match="incomplete"):
        history.append(path, {"run_id": "next"})


def test_a_record_may_not_set_the_chain_fields(tmp_path):
    with pytest.raises(history.HistoryError, match="seq"):
        history.append(tmp_path / "runs.jsonl", {"seq": 7})


_WRITER = """
import sys, time
from pathlib import Path
from gates.feedback import history
path, tag, n, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
while not go.exists():
    time.sleep(0.001)
for i in range(n):
    history.append(path, {"run_id": f"{tag}-{i}", "pad": "x" * 3000})
"""


def test_two_processes_appending_at_once_keep_one_intact_chain(tmp_path):
    path = tmp_path / "runs.jsonl"
    n, go = 150, tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), tag, str(n), str(go)],
            cwd=REPO,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        )
        for tag in ("a", "b")
    ]
    time.sleep(1.0)  # both interpreters are up and waiting: release them together
    go.touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    result = history.verify(path)
    assert result, result.problems
    assert result.records == 2 * n
    ids = [r["run_id"] for r in history.records(path)]
    assert sorted(ids) == sorted([f"a-{i}" for i in range(n)] + [f"b-{i}" for i in range(n)])
    # Interleaving proves both ran at once (not strictly required, but each keeps its order).
    assert [i for i in ids if i.startswith("a")] == [f"a-{i}" for i in range(n)]


def test_resumed_verification_checks_appended_records_and_moves_the_checkpoint(
    tmp_path, checkpoint_key
):
    path = tmp_path / "runs.jsonl"
    written = _fill(path, 3)
    assert not history.checkpoint_path(path).exists()
    first = history.verify(path, resume=True)
    assert first
    assert first.records == 3
    assert first.head == written[-1]["hash"]
    mark = json.loads(history.checkpoint_path(path).read_text())
    assert mark["bytes"] == path.stat().st_size
    assert mark["records"] == 3
    more = [history.append(path, {"run_id": f"later-{i}"}) for i in range(2)]
    again = history.verify(path, resume=True)
    assert again
    assert again.records == 5
    assert again.head == more[-1]["hash"]
    assert json.loads(history.checkpoint_path(path).read_text())["records"] == 5
    # A bad record appended after the checkpoint is found, with its line number.
    with path.open("ab") as handle:
        handle.write(b'{"seq": 5, "prev": "x", "hash": "y"}\n')
    broken = history.verify(path, resume=True)
    assert not broken
    assert any(p.line == 6 for p in broken.problems)
    assert json.loads(history.checkpoint_path(path).read_text())["records"] == 5


def test_an_edit_inside_the_verified_prefix_is_still_caught_when_resuming(tmp_path, checkpoint_key):
    path = tmp_path / "runs.jsonl"
    _fill(path, 4)
    assert history.verify(path, resume=True)
    # Same length, one byte of an old record changed: the prefix no longer hashes the same,
    # so the whole chain is checked again.
    path.write_bytes(path.read_bytes().replace(b'"m":0.1', b'"m":0.7'))
    result = history.verify(path, resume=True)
    assert not result
    assert any(p.line == 2 and "edited" in p.message for p in result.problems)


def test_truncation_below_the_checkpoint_is_caught_when_resuming(tmp_path, checkpoint_key):
    path = tmp_path / "runs.jsonl"
    _fill(path, 4)
    assert history.verify(path, resume=True)
    path.write_bytes(b"".join(_lines(path)[:2]))
    result = history.verify(path, resume=True)
    assert not result
    assert any("truncated" in p.message for p in result.problems)


def test_a_rewritten_checkpoint_does_not_vouch_for_an_edited_record(tmp_path, checkpoint_key):
    path = tmp_path / "runs.jsonl"
    _fill(path, 3)
    assert history.verify(path, resume=True)
    # A checkpoint rewritten to vouch for an edited prefix (anyone who can write the folder
    # can do this): without the key its seal no longer checks, so the stage's resumed check
    # reads every record too and rejects what the full check rejects.
    path.write_bytes(path.read_bytes().replace(b'"m":0.1', b'"m":0.7'))
    raw = path.read_bytes()
    mark = json.loads(history.checkpoint_path(path).read_text())
    mark["sha256"] = hashlib.sha256(raw).hexdigest()
    history.checkpoint_path(path).write_text(json.dumps(mark))
    resumed = history.verify(path, resume=True)
    assert not resumed
    assert any(p.line == 2 and "edited" in p.message for p in resumed.problems)
    full = history.verify(path)
    assert not full
    assert any(p.line == 2 for p in full.problems)


def test_records_last_n_reads_only_the_newest_with_their_line_numbers(tmp_path):
    path = tmp_path / "runs.jsonl"
    _fill(path, 5)
    assert [r["run_id"] for r in history.records(path, last=2)] == ["run-3", "run-4"]
    assert len(history.records(path, last=50)) == 5
    with path.open("ab") as handle:
        handle.write(b"not json\n")
    with pytest.raises(history.HistoryError, match=r":6: not a JSON record"):
        history.records(path, last=1)


def test_a_checkpoint_that_does_not_describe_its_own_prefix_is_not_trusted(
    tmp_path, checkpoint_key
):
    path = tmp_path / "runs.jsonl"
    written = _fill(path, 3)
    assert history.verify(path, resume=True)
    good = json.loads(history.checkpoint_path(path).read_text())
    forgeries = (
        {"head": "e" * 64},
        {"records": 2},
        {"bytes": good["bytes"] - 1},
        {"bytes": float("inf")},  # written as Infinity: int() overflows
    )
    for forged in forgeries:
        history.checkpoint_path(path).write_text(json.dumps({**good, **forged}))
        # Not trusted: the whole chain is verified from the start, and its real head reported.
        result = history.verify(path, resume=True)
        assert result
        assert result.records == 3
        assert result.head == written[-1]["hash"]


# --- planted sidecars (red team, 6 December): the history's folder may be the contributor's ---


def test_a_lock_symlink_creates_nothing_outside_and_the_append_is_refused(tmp_path):
    path = tmp_path / "history" / "runs.jsonl"
    _fill(path, 1)
    planted = tmp_path / "outside" / "made-by-the-gate"
    planted.parent.mkdir()
    history.lock_path(path).unlink()
    history.lock_path(path).symlink_to(planted)
    with pytest.raises(history.HistoryError, match=r"runs\.jsonl\.lock: refused: a symlink"):
        history.append(path, {"run_id": "next"})
    assert not planted.exists()
    assert len(_lines(path)) == 1


_VERIFY = """
import sys
from pathlib import Path
from gates.feedback import history
result = history.verify(Path(sys.argv[1]))
print(result.problems[0].message if result.problems else "verified")
"""


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_head_sidecar_that_is_a_fifo_or_a_device_is_a_problem_not_a_hang(tmp_path, kind):
    # A FIFO blocked the reader forever; a symlink to /dev/zero read without end.
    import os

    path = tmp_path / "runs.jsonl"
    _fill(path, 2)
    history.head_path(path).unlink()
    if kind == "fifo":
        os.mkfifo(history.head_path(path))
    else:
        history.head_path(path).symlink_to("/dev/zero")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _VERIFY, str(path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,  # a guard against the hang, not a measurement
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"history verify blocked on a planted {kind} .head")
    assert done.returncode == 0, done.stderr
    assert "runs.jsonl.head: refused: a symlink or not a regular file" in done.stdout


def test_a_sealed_line_whose_header_nests_too_deep_is_a_problem_naming_the_line(
    tmp_path, monkeypatch
):
    # The encrypted header is read before any key: nesting within its 64 KiB limit escaped the
    # verifier as a RecursionError (a traceback) instead of a refusal naming the line.
    import base64

    from pipeline.atrest import MAGIC
    from pipeline.keys.local import LocalProvider

    monkeypatch.setenv("RT_DATA_KEY", base64.b64encode(b"k" * 32).decode())
    provider = LocalProvider(
        env="UNSET_SIGNING", key_file=None, kek_env="RT_DATA_KEY", kek_file=None
    )
    cipher = history.RecordCipher(name="runs.jsonl", provider=provider)
    path = tmp_path / "runs.jsonl"
    history.append(path, {"run_id": "run-0"}, cipher=cipher)
    written = history.append(path, {"run_id": "run-1"}, cipher=cipher)
    outer = json.loads(_lines(path)[1])
    deep = MAGIC + b"[" * 30_000 + b"]" * 30_000 + b"\n"
    outer["seal"] = base64.b64encode(deep).decode("ascii")
    path.write_bytes(_lines(path)[0] + json.dumps(outer).encode() + b"\n")
    assert outer["hash"] == written["hash"]
    result = history.verify(path, cipher=cipher)
    assert not result
    assert result.problems[0].line == 2
    assert "record 1 refused: encrypted file header is not valid" in result.problems[0].message
