"""Planted attack (red team 10, 7 December): code imported from where no scan looks.

The sast gate scans ``[sast].paths`` and calls an import of the project's own code outside
them SAST102 (row 21: ``from tests.helpers import load``); a top-level name it does not know is
taken for an installed package. A scanned module that first puts a folder of its choosing on
``sys.path`` (``sys.path.insert(0, ".../data/blob.zip")``) makes ``import evil`` load a module
from a zip (or any folder outside the scan) that neither bandit nor the unsafe-load check ever
reads: its ``pickle.loads`` ran and the sast gate PASSED (red before). A write to ``sys.path``
is now SAST102 unless its value is, as written, the scanned file's own folder or one above it
(``noxfile.py``'s ``sys.path.insert(0, str(ROOT))``, ``ROOT = Path(__file__).resolve().parent``).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gates.unsafe_load import scan_source
from tests.attacks.test_redteam10_unsafe_loaders import _project, _sast

PLANT = """import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "data" / "blob.zip"))

import evil_mod  # noqa: E402


def load(blob):
    return evil_mod.restore(blob)


if __name__ == "__main__":
    print(load(evil_mod.PAYLOAD))
"""
# Inside the zip: never scanned (not a .py in [sast].paths; bandit does not open archives).
EVIL = """import pickle

PAYLOAD = pickle.dumps({"ran": "unscanned pickle.loads"})


def restore(blob):
    return pickle.loads(blob)
"""


def _plant(tmp_path: Path) -> Path:
    root = _project(tmp_path / "project", PLANT)
    with zipfile.ZipFile(root / "data" / "blob.zip", "w") as archive:
        archive.writestr("evil_mod.py", EVIL)
    return root


def test_the_planted_module_really_runs_code_from_the_zip(tmp_path: Path) -> None:
    """The attack is real: the scanned module imports and runs the zip's pickle.loads."""
    root = _plant(tmp_path)
    done = subprocess.run(
        [sys.executable, "-I", str(root / "src" / "model_io.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "unscanned pickle.loads" in done.stdout


def test_the_sast_gate_fails_a_write_to_sys_path(tmp_path: Path) -> None:
    done = _sast(_plant(tmp_path))
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    assert "SAST102" in out, out
    assert "src/model_io.py:5" in out, out
    assert "adds to sys.path" in out, out


WRITES = {
    "insert a literal": "import sys\nsys.path.insert(0, 'data')\n",
    "append a folder below the file's": (
        "import sys\nfrom pathlib import Path\nROOT = Path(__file__).resolve().parent\n"
        "sys.path.append(str(ROOT / 'data'))\n"
    ),
    "extend": "import sys\nsys.path.extend(['data'])\n",
    "assign": "import sys\nsys.path = ['data', *sys.path]\n",
    "add in place": "import sys\nsys.path += ['data']\n",
    "set an item": "import sys\nsys.path[0] = 'data'\n",
    "from sys import path": "from sys import path\npath.insert(0, 'data')\n",
    "an alias added to in place": "from sys import path as p\np += ['data']\n",
    "the root rebound": (
        "import sys\nfrom pathlib import Path\nROOT = Path(__file__).parent\nROOT = 'data'\n"
        "sys.path.insert(0, str(ROOT))\n"
    ),
    "a parameter shadowing the root": (
        "import sys\nfrom pathlib import Path\nROOT = Path(__file__).parent\n"
        "def add(ROOT):\n    sys.path.insert(0, ROOT)\n"
    ),
    "a Path of the module's own": (
        "import sys\ndef Path(p):\n    return 'data'\nsys.path.insert(0, str(Path(__file__)))\n"
    ),
    "__file__ rebound": "import sys\n__file__ = 'data/x'\nsys.path.insert(0, __file__)\n",
    # sweep11: the spellings of a parent folder now accepted, turned to a named folder
    "a named folder after ..": (
        "import os, sys\nsys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'data'))\n"
    ),
    "../data in one part": (
        "import os, sys\nsys.path.insert(0, os.path.join(os.path.dirname(__file__), '../data'))\n"
    ),
    "Path / .. / data": (
        "import sys\nfrom pathlib import Path\n"
        "sys.path.insert(0, str(Path(__file__).parent / '..' / 'data'))\n"
    ),
    "os.pardir rebound": (
        "import os, sys\nfrom os import pardir\npardir = 'data'\n"
        "sys.path.insert(0, os.path.join(os.path.dirname(__file__), pardir))\n"
    ),
    "an f-string with more": (
        "import sys\nfrom pathlib import Path\nsys.path.insert(0, f'{Path(__file__).parent}/data')\n"
    ),
    "a function's name used in another": (
        "import sys\nfrom pathlib import Path\ndef a():\n    here = Path(__file__).parent\n"
        "def b():\n    sys.path.insert(0, str(here))\n"
    ),
    "an attribute holding sys.path added to in place": (
        "import sys\nclass F:\n    def __init__(self):\n        self.path = sys.path\n"
        "        self.path += ['data']\n"
    ),
    "sys under another name": "import sys as s\nx = s\nx.path = ['data']\n",
    "a slice of sys.path with more": "import sys\nsys.path = sys.path[1:] + ['data']\n",
    "a name rebound below": (
        "import sys\nfrom os.path import dirname, join\nroot = dirname(__file__)\n"
        "root = join(root, 'data')\nsys.path.insert(0, root)\n"
    ),
    "a name rebound in another function": (
        "import sys\nfrom pathlib import Path\nROOT = Path(__file__).parent\n"
        "def f():\n    global ROOT\n    ROOT = 'data'\nsys.path.insert(0, str(ROOT))\n"
    ),
    "a name deleted and bound by a loop": (
        "import sys\nfrom pathlib import Path\nROOT = Path(__file__).parent\n"
        "for ROOT in ['data']:\n    pass\nsys.path.insert(0, str(ROOT))\n"
    ),
    # red before: what the rule trusts, replaced (in this module or any other scanned one)
    "os.path.dirname replaced": ("import os\nos.path.dirname = lambda p: 'data'\n"),
    "Path.parent replaced": (
        "from pathlib import Path\nPath.parent = property(lambda self: 'data')\n"
    ),
    # red before: a list bound once to the file's folder, then appended to
    "a list changed in place": (
        "import sys\nfrom pathlib import Path\nROOTS = [str(Path(__file__).parent)]\n"
        "ROOTS.append('data')\nsys.path.extend(ROOTS)\n"
    ),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_each_write_is_sast102(write: str) -> None:
    found = scan_source(WRITES[write], path="src/model_io.py")
    assert [(f.rule, f.call) for f in found] == [("SAST102", "sys.path")]


FOLDERS = {
    "the noxfile's root": (
        "import sys\nfrom pathlib import Path\nROOT = Path(__file__).resolve().parent\n"
        "sys.path.insert(0, str(ROOT))\n"
    ),
    "os.path.dirname": "import os, sys\nsys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\n",
    "parents[1]": (
        "import sys\nfrom pathlib import Path\n"
        "sys.path.append(str(Path(__file__).resolve().parents[1]))\n"
    ),
    "reading sys.path": "import sys\nsaved = list(sys.path)\nfirst = sys.path[0]\n",
    # sweep11: spellings of the same folders a project writes (each SAST102 before)
    "os.path.join with ..": (
        "import os, sys\n"
        "sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..')))\n"
    ),
    "from os.path import join, two ..": (
        "import sys\nfrom os.path import abspath, dirname, join, normpath\n"
        "sys.path.insert(0, normpath(join(dirname(abspath(__file__)), '..', '..')))\n"
    ),
    "Path / ..": (
        "import sys\nfrom pathlib import Path\nsys.path.insert(0, str(Path(__file__).parent / '..'))\n"
    ),
    "as_posix": (
        "import sys\nfrom pathlib import Path\n"
        "sys.path.insert(0, Path(__file__).resolve().parent.as_posix())\n"
    ),
    "an f-string of the folder": (
        "import sys\nfrom pathlib import Path\nsys.path.insert(0, f'{Path(__file__).parent}')\n"
    ),
    "a name bound in the function that writes": (  # gates/compiled.py's main()
        "import sys\nfrom pathlib import Path\ndef main():\n"
        "    tree = Path(__file__).resolve().parents[1]\n"
        "    if str(tree) not in sys.path:\n        sys.path.insert(0, str(tree))\n"
    ),
    "a name rebound through normpath": (  # sympy's testing/tests/diagnose_imports.py
        "import sys\nfrom os.path import abspath, dirname, join, normpath\n"
        "root = join(dirname(abspath(__file__)), '..', '..')\nroot = normpath(root)\n"
        "sys.path.insert(0, root)\n"
    ),
    "a slice of sys.path": "import sys\nsys.path = sys.path[1:]\n",  # mypy's pyinfo.py
    "an attribute given sys.path": (  # distlib's DistributionPath: it writes nothing
        "import sys\nclass Finder:\n    def __init__(self, path=None):\n"
        "        self.path = sys.path if path is None else path\n"
    ),
    "a name bound under if __name__": (
        "import os, sys\nif __name__ == '__main__':\n"
        "    HERE = os.path.dirname(os.path.abspath(__file__))\n    sys.path.insert(0, HERE)\n"
    ),
}


@pytest.mark.parametrize("folder", list(FOLDERS))
def test_the_files_own_folder_or_above_passes(folder: str) -> None:
    assert scan_source(FOLDERS[folder], path="src/model_io.py") == []
