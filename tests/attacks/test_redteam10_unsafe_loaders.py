"""Planted attack (red team 10, 7 December): loaders of installed libraries the sast gate did not know.

``distributed`` (dask's cluster, in the lock for ``[run].dask_scheduler``) ships its wire format
as public functions: ``distributed.protocol.deserialize_bytes(b)``, ``loads(frames)``,
``deserialize(header, frames)`` and ``serialize.pickle_loads(header, frames)`` each unpickle
what they are given (checked: each ran ``os.system`` from a crafted payload). Only
``distributed.protocol.pickle.loads`` was SAST101 (its ``pickle`` segment); the others, and
``mlflow.pyfunc.load_pyfunc`` (the old name of ``load_model``, still exported by mlflow 3.18)
and cleanlab's ``_Serializer.deserialize`` (``pickle.load`` of a saved Datalab), passed the
sast gate. Each is planted in a scanned module here, through the real gate's CLI.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gates.unsafe_load import scan_source
from tests.hostile_support import GATE_CHILD, run_child, scanned_project

_TIMEOUT = 300

PLANTS = {
    "deserialize_bytes": (
        "from distributed.protocol import deserialize_bytes\n"
        "def load(path):\n"
        "    with open(path, 'rb') as f:\n"
        "        return deserialize_bytes(f.read())\n",
        "distributed.protocol.deserialize_bytes",
    ),
    "loads": (
        "import distributed.protocol as wire\ndef load(frames):\n    return wire.loads(frames)\n",
        "distributed.protocol.loads",
    ),
    "deserialize": (
        "from dask.distributed import protocol\n"
        "def load(header, frames):\n"
        "    return protocol.deserialize(header, frames)\n",
        "distributed.protocol.deserialize",
    ),
    "pickle_loads": (
        "from distributed.protocol.serialize import pickle_loads\n"
        "def load(header, frames):\n"
        "    return pickle_loads(header, frames)\n",
        "distributed.protocol.serialize.pickle_loads",
    ),
    "core.loads": (
        "from distributed.protocol import core\ndef load(frames):\n    return core.loads(frames)\n",
        "distributed.protocol.core.loads",
    ),
    "mlflow load_pyfunc": (
        "import mlflow.pyfunc\ndef load(uri):\n    return mlflow.pyfunc.load_pyfunc(uri)\n",
        "mlflow.pyfunc.load_pyfunc",
    ),
    "cleanlab deserialize": (
        "from cleanlab.datalab.internal.serialize import _Serializer\n"
        "def load(path):\n"
        "    return _Serializer.deserialize(path)\n",
        "cleanlab.datalab.internal.serialize._Serializer.deserialize",
    ),
}


def _project(root: Path, plant: str) -> Path:
    scanned_project(root)
    (root / "src" / "model_io.py").write_text(plant, encoding="utf-8")
    return root


def _sast(root: Path) -> subprocess.CompletedProcess[str]:
    # No address-space bound, as before: the gate's own tools run in children of this child.
    return run_child(
        GATE_CHILD,
        root,
        *("run", "sast", "--no-cache"),
        timeout=_TIMEOUT,
        address_space=None,
        what="the sast gate",
    )


@pytest.mark.parametrize("plant", list(PLANTS))
def test_each_loader_is_sast101_where_it_is_used(plant: str) -> None:
    source, name = PLANTS[plant]
    found = scan_source(source, path="src/model_io.py")
    assert [(f.rule, f.call) for f in found] == [("SAST101", name)]


@pytest.mark.parametrize("plant", ["deserialize_bytes", "mlflow load_pyfunc"])
def test_the_sast_gate_fails_a_planted_loader(tmp_path: Path, plant: str) -> None:
    source, name = PLANTS[plant]
    done = _sast(_project(tmp_path / "project", source))
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    assert "SAST101" in out, out
    assert name in out, out


def test_the_cluster_client_the_pipeline_uses_still_passes() -> None:
    """Control: ``distributed.Client`` and the writers are not loaders."""
    source = (
        "from distributed import Client, LocalCluster\n"
        "from distributed.protocol import dumps, serialize, serialize_bytes, to_serialize\n"
        "client = Client(LocalCluster(n_workers=1))\n"
        "frames = dumps({'x': to_serialize(1)})\n"
        "header, parts = serialize(1)\n"
        "blob = serialize_bytes(1)\n"
    )
    assert scan_source(source, path="src/model_io.py") == []
