"""Child processes for the crash tests: each loops over one write path until the test kills it.

``python -m tests.crash_support <loop> ARGS`` prints ``ready`` once its imports are done, then
repeats its write for ever; the test sends SIGKILL at a random moment (no cleanup, no finally
blocks run) and checks what is left. Nothing here is a hook in the code under test: the children
call the same functions a run calls.

- ``append PATH TAG``: ``history.append`` of records ``TAG-0``, ``TAG-1``, ... of varying size;
- ``stage ROOT TAG``: the feedback stage (``run_chain(["feedback"])``) for runs ``TAG-0``, ...,
  on a slow disk: every ``os.fsync`` of this child takes 10 ms longer, that of the history
  itself 200 ms, so that a kill at a random moment often lands inside a write, and between the
  record and its ``.head`` in particular (the append is a few ms of a 200 ms stage). It prints
  ``append`` as each append starts, so that a test may also kill it just after one;
- ``promote REGISTRY WORK KEYFILE MODEL TAG``: sign a new bundle ``TAG-i`` and promote it.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sys
import time
from pathlib import Path

# The gates the registry's champion must have passed (as in tests/pipeline/test_champion.py).
REQUIRED = ("data", "train", "cv")
MODEL = "artifacts/model.skops"
MANIFEST = "artifacts/model.manifest.json"


def make_bundle(root: Path, *, run_id: str, key: object, model: Path) -> Path:
    """A signed bundle under ``root`` holding the real skops ``model`` (and its manifest).

    Returns the envelope. ``key`` is a ``pipeline.signing.SigningKey``.
    """
    from pipeline.attestation import Subject, build_statement, sign_and_write
    from pipeline.signing import SigningKey

    assert isinstance(key, SigningKey)
    subjects = []
    for name, source in ((MODEL, model), (MANIFEST, model.with_name("model.manifest.json"))):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        subjects.append(Subject(name, hashlib.sha256(target.read_bytes()).hexdigest()))
    predicate = {
        "bundle": "artifacts",
        "run_id": run_id,
        "gates": {name: {"status": "PASSED"} for name in REQUIRED},
        # As the artifacts gate writes it: the registry audits the model file it names.
        "model": {
            "file": MODEL,
            "manifest": MANIFEST,
            "sha256": subjects[0].sha256,
            "estimator": "logistic_regression",
        },
    }
    envelope, _ = sign_and_write(
        build_statement(subjects, predicate), key=key, bundle_dir=root / "artifacts"
    )
    return envelope


def _append(path: str, tag: str) -> None:
    from gates.feedback import history

    _ready()
    i = 0
    while True:
        # Sizes from a few hundred bytes to a few KiB, so lines cross page boundaries.
        history.append(Path(path), {"run_id": f"{tag}-{i}", "pad": "x" * (97 * (i % 41))})
        i += 1


def _stage(root: str, tag: str) -> None:
    from gates.feedback import history
    from gates.runner import run_chain
    from pipeline.config import load_policy

    project = Path(root)
    real_fsync, real_append = os.fsync, history.append

    def slow_fsync(fd: int) -> None:
        real_fsync(fd)
        log = os.readlink(f"/proc/self/fd/{fd}").endswith(".jsonl")
        time.sleep(0.2 if log else 0.01)

    def announced_append(
        path: Path, payload: dict[str, object], **options: object
    ) -> dict[str, object]:
        sys.stdout.write("append\n")
        sys.stdout.flush()
        return real_append(path, payload, **options)  # type: ignore[arg-type]

    os.fsync = slow_fsync
    history.append = announced_append
    _ready()
    i = 0
    while True:
        os.environ["GATES_RUN_ID"] = f"{tag}-{i}"
        summary = run_chain(
            ["feedback"],
            policy=load_policy(project / "policy.toml"),
            reports_dir=project / "reports",
            out=io.StringIO(),
        )
        if summary.exit_code != 0:
            sys.stderr.write(f"run {tag}-{i}: {[r.summary for r in summary.results]}\n")
            sys.exit(3)
        i += 1


def _promote(registry_dir: str, work: str, keyfile: str, model: str, tag: str) -> None:
    from pipeline.attestation import verify_bundle
    from pipeline.champion import ModelRegistry
    from pipeline.signing import read_private_key

    key = read_private_key(Path(keyfile), release=True)
    registry = ModelRegistry(Path(registry_dir), trusted=key.public, required_gates=REQUIRED)
    _ready()
    i = 0
    while True:
        root = Path(work) / f"{tag}-{i}"
        envelope = make_bundle(root, run_id=f"{tag}-{i}", key=key, model=Path(model))
        source = verify_bundle(envelope, root=root, trusted=key.public, required_gates=REQUIRED)
        registry.promote(source)
        i += 1


def _ready() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()


if __name__ == "__main__":
    loops = {"append": _append, "stage": _stage, "promote": _promote}
    loops[sys.argv[1]](*sys.argv[2:])
