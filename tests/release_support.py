"""Helpers for the attestation, champion and deploy tests: a release key and a signed project."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests import project_support

REPO = Path(__file__).resolve().parent.parent
ENV = "GATES_SIGNING_KEY"


def make_release_key(root: Path, keys: Path) -> str:
    """Create a release key pair: the public key at ``root/keys/release.pub``; return the PEM."""
    from pipeline.signing import generate_key_pair

    generate_key_pair(private_path=keys / "release.key", public_path=root / "keys" / "release.pub")
    return (keys / "release.key").read_text(encoding="ascii")


def run_chain(
    root: Path, *, pem: str | None, gates: Sequence[Any] | None = None, use_cache: bool = False
) -> Any:
    """Run every gate in-process on ``root``, signing with ``pem`` (None: the development key).

    ``gates`` is the chain (default: the registry), e.g. ``chain_support.replaying(...)``;
    ``use_cache`` turns the gate cache on, as ``python -m gates run`` has it (a copy of a
    project the chain ran on then reuses every gate whose inputs are unchanged).
    """
    from gates.registry import GATES
    from gates.runner import run_chain as chain
    from pipeline.config import load_policy

    with pytest.MonkeyPatch.context() as patch:
        if pem is None:
            patch.delenv(ENV, raising=False)
        else:
            patch.setenv(ENV, pem)
        return chain(
            [],
            gates=GATES if gates is None else gates,
            policy=load_policy(root / "policy.toml"),
            reports_dir=root / "reports",
            out=io.StringIO(),
            use_cache=use_cache,
        )


def new_project(root: Path) -> Path:
    """A fresh copy of the project (policy.toml, data/, the code the gates read) at ``root``."""
    root.mkdir(parents=True)
    return project_support.copy_project(root, keys=False)


def signed_project(base: Path, *, gates: Sequence[Any] | None = None) -> tuple[Path, str]:
    """A project whose whole chain PASSED and was signed with its own release key.

    ``gates`` as for ``run_chain``: ``chain_support.replaying(recorded)`` replays lint, sast and
    audit from the session's recorded run (the same code; the release key it adds under
    ``keys/`` is nothing they read).
    """
    root = new_project(base / "signed")
    pem = make_release_key(root, base / "secret")
    summary = run_chain(root, pem=pem, gates=gates)
    assert summary.exit_code == 0, [r.summary for r in summary.results]
    return root, pem


def copy_project(source: Path, target: Path) -> Path:
    """A copy that keeps symlinks as symlinks and file modes as they are."""
    shutil.copytree(source, target, symlinks=True)
    return target


def policy_document(root: Path) -> dict[str, Any]:
    """The parsed policy.toml of ``root``."""
    return tomllib.loads((root / "policy.toml").read_text(encoding="utf-8"))


def cli(
    cwd: Path, module: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m <module> ARGS`` (``gates`` or ``pipeline``) in ``cwd``, run in this process
    through the CLI's own ``main()``, the function ``__main__`` calls: its exit code, stdout and
    stderr as a subprocess would give them, without a new interpreter and its imports (about
    2.5 CPU-seconds a command, most of it scikit-learn and skops). ``env`` is added to the
    environment for the call, as ``tests.conftest.run_module`` adds it.

    An exception escaping ``main()`` (a traceback for the user) fails the test. Each module that
    uses this keeps a test of the real entry point (``run_module`` / ``gates_cli``) as well.
    """
    from gates._cli import main as gates_main
    from pipeline._cli import main as pipeline_main

    main = {"gates": gates_main, "pipeline": pipeline_main}[module]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.delenv("GATES_RUN_ID", raising=False)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        stack.enter_context(contextlib.chdir(cwd))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse's usage errors
            code = 0 if exit_.code is None else exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess([module, *args], code, out.getvalue(), err.getvalue())
