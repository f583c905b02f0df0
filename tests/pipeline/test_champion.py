"""The file-based registry: promotion verifies a copy, and a kill -9 mid-way keeps the old champion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline.attestation import ENVELOPE_FILE, verify_bundle
from pipeline.champion import ModelRegistry, RegistryError
from pipeline.signing import load_public_key
from tests.release_support import REPO, copy_project, run_chain

REQUIRED = ("data", "train", "cv")


@pytest.fixture(scope="module")
def two_runs(
    signed_chain: tuple[Path, str],
    recorded_chain: tuple[Path, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path]:
    """Two signed runs of the same project (same key, different run ids); lint, sast and audit
    of the second replay the session's recorded outcomes (the same code)."""
    from tests.chain_support import replaying

    base = tmp_path_factory.mktemp("champion")
    first, pem = copy_project(signed_chain[0], base / "first"), signed_chain[1]
    second = copy_project(first, base / "second")
    assert run_chain(second, pem=pem, gates=replaying(recorded_chain[0])).exit_code == 0
    return first, second


def _verified(root: Path):
    trusted = load_public_key(root / "keys/release.pub")
    return verify_bundle(
        root / "artifacts" / ENVELOPE_FILE, root=root, trusted=trusted, required_gates=REQUIRED
    )


def _registry(root: Path, path: Path) -> ModelRegistry:
    return ModelRegistry(
        path, trusted=load_public_key(root / "keys/release.pub"), required_gates=REQUIRED
    )


def test_no_champion_before_the_first_promotion(two_runs, tmp_path):
    assert _registry(two_runs[0], tmp_path / "reg").champion() is None


def test_promotion_switches_the_pointer_and_the_version_verifies(two_runs, tmp_path):
    first, second = two_runs
    registry = _registry(first, tmp_path / "reg")
    one = registry.promote(_verified(first))
    two = registry.promote(_verified(second))
    assert one.version != two.version
    current = registry.champion()
    assert current is not None
    assert current.version == two.version
    assert current.attestation.run_id == _verified(second).run_id


def test_a_tampered_registry_version_is_refused(two_runs, tmp_path):
    first, _ = two_runs
    registry = _registry(first, tmp_path / "reg")
    champion = registry.promote(_verified(first))
    model = champion.attestation.root / "artifacts/model.skops"
    model.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(RegistryError, match=r"artifacts/model.skops: SHA-256"):
        registry.champion()


def test_a_pointer_to_another_envelope_is_refused(two_runs, tmp_path):
    first, _ = two_runs
    registry = _registry(first, tmp_path / "reg")
    registry.promote(_verified(first))
    pointer = json.loads(registry.pointer.read_text(encoding="utf-8"))
    pointer["envelope_sha256"] = "0" * 64
    registry.pointer.write_text(json.dumps(pointer), encoding="utf-8")
    with pytest.raises(RegistryError, match="not the envelope the champion pointer names"):
        registry.champion()


# The subprocess promotes the second run and stops dead at one step: it signals the test,
# then sleeps until the test kills it with SIGKILL (no cleanup, no finally blocks run).
_CRASHER = """
import os, shutil, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
import pipeline.champion as champion
from pipeline.attestation import verify_bundle
from pipeline.signing import load_public_key

step, root, registry_dir, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])

def stop():
    ready.write_text("stopped")
    time.sleep(600)

if step == "copy":
    real_copy, copied = shutil.copyfile, []
    def copyfile(src, dst, **kw):
        copied.append(dst)
        if len(copied) == 3:
            stop()
        return real_copy(src, dst, **kw)
    shutil.copyfile = copyfile
elif step == "rename":
    real_rename = os.rename
    def rename(src, dst):
        stop()
    os.rename = rename
elif step == "pointer":
    real_replace = os.replace
    def replace(src, dst):
        if Path(dst).name == "champion":
            stop()
        return real_replace(src, dst)
    os.replace = replace

trusted = load_public_key(root / "keys/release.pub")
required = ("data", "train", "cv")
source = verify_bundle(root / "artifacts/attestation.intoto.json", root=root, trusted=trusted, required_gates=required)
champion.ModelRegistry(registry_dir, trusted=trusted, required_gates=required).promote(source)
print("promoted without stopping")
"""


@pytest.mark.parametrize("step", ["copy", "rename", "pointer"])
def test_kill_9_during_promotion_leaves_the_old_champion_intact(step, two_runs, tmp_path):
    first, second = two_runs
    registry = _registry(first, tmp_path / "reg")
    old = registry.promote(_verified(first))
    pointer_before = registry.pointer.read_bytes()
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CRASHER.format(repo=str(REPO)),
            step,
            str(second),
            str(registry.path),
            str(ready),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            out, err = process.communicate(timeout=10)
            pytest.fail(f"the promotion did not reach step {step}: {out!r} {err!r}")
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL

    assert registry.pointer.read_bytes() == pointer_before
    current = registry.champion()
    assert current is not None
    assert current.version == old.version
    if step in ("copy", "rename"):
        # The crash left a half-built (copy) or complete (rename) staging folder behind.
        assert list((registry.path / "versions").glob(".staging-*"))
    if step == "pointer":
        # The temp file of the interrupted pointer write is the only leftover beside it.
        assert any(p.name.startswith(".champion.") for p in registry.path.iterdir())

    # The registry recovers: the next promotion succeeds and sweeps the crashed staging folder.
    new = registry.promote(_verified(second))
    assert registry.champion().version == new.version
    assert not list((registry.path / "versions").glob(".staging-*"))
