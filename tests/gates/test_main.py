"""``python -m gates`` starts light (thread defaults before numpy, no heavy imports for ``list``) and leaves light."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

_PROBE = """
import gc, runpy, sys, os
sys.argv = ["gates", "list"]
try:
    runpy.run_module("gates", run_name="__main__")
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in ("numpy", "pandas", "sklearn", "scipy", "skops") if m in sys.modules)
print("HEAVY", heavy, "CODE", code, "THREADS", os.environ.get("OMP_NUM_THREADS"))
print("FROZEN", gc.get_freeze_count() > 0)
"""


def _probe(env_extra: dict[str, str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), **env_extra}
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if name not in env_extra:
            env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-2]


def test_list_imports_no_heavy_library_and_sets_one_thread():
    assert _probe({}) == "HEAVY [] CODE 0 THREADS 1"


def test_a_thread_count_the_user_exported_wins():
    assert _probe({"OMP_NUM_THREADS": "4"}).endswith("THREADS 4")


def test_the_exit_spares_the_teardown_its_collections():
    # Everything loaded is frozen once the command returned (gates.worker explains why): only
    # the exit is left, and atexit handlers still run.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=False
    )
    assert done.stdout.splitlines()[-1] == "FROZEN True", done.stderr
