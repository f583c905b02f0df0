"""Red team 14: the import machinery patched in ways row 79's SAST102 did not read (row 87).

Row 79 made a write to ``sys.meta_path``, ``sys.path_hooks`` or ``sys.path_importer_cache``
(``.insert``, ``.append``, ``[k] = v``, ...) and to ``os.path``/``builtins``/``importlib``
attributes SAST102. Each form below passed the sast gate before (red):

- the same writes through a function that takes the table first: ``list.insert(sys.meta_path,
  0, F())``, ``dict.update(sys.path_importer_cache, m)``, ``operator.setitem(...)``,
  ``type(sys.meta_path).insert(...)``; and ``list.insert(sys.path, 0, "data")``, which row 65's
  ``sys.path`` rule read only as ``sys.path.insert``;
- what importlib's own loaders call at every import: ``_io.open_code`` (each source file is
  read through it: replaced, ``import mod_a`` runs another file, shown for real below),
  ``_io.FileIO``, ``marshal.loads`` (each cached .pyc), ``_imp`` (extension modules),
  ``_frozen_importlib``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gates.unsafe_load import scan_source
from tests.attacks.test_redteam10_unsafe_loaders import _project, _sast

HEAD = "import operator, sys\n"

PLANTED = {
    "list.insert(sys.meta_path, ...)": "list.insert(sys.meta_path, 0, Finder())\n",
    "list.append(sys.path_hooks, ...)": "list.append(sys.path_hooks, hook)\n",
    "list.extend(sys.meta_path, ...)": "list.extend(sys.meta_path, [Finder()])\n",
    "dict.update(sys.path_importer_cache, ...)": (
        'dict.update(sys.path_importer_cache, {"data": importer})\n'
    ),
    "dict.__setitem__(sys.path_importer_cache, ...)": (
        'dict.__setitem__(sys.path_importer_cache, "data", importer)\n'
    ),
    "operator.setitem(sys.path_importer_cache, ...)": (
        'operator.setitem(sys.path_importer_cache, "data", importer)\n'
    ),
    "from operator import setitem": (
        'from operator import setitem as put\nput(sys.path_importer_cache, "data", importer)\n'
    ),
    "operator.iadd(sys.meta_path, ...)": "operator.iadd(sys.meta_path, [Finder()])\n",
    "the table under a name": (
        'cache = sys.path_importer_cache\noperator.setitem(cache, "data", importer)\n'
    ),
    "type(sys.meta_path).insert": "type(sys.meta_path).insert(sys.meta_path, 0, Finder())\n",
    "sys.meta_path.__class__.append": "sys.meta_path.__class__.append(sys.meta_path, Finder())\n",
    "list.insert(sys.path, ...)": 'list.insert(sys.path, 0, "data")\n',
    "operator.iadd(sys.path, ...)": 'operator.iadd(sys.path, ["data"])\n',
    "_io.open_code =": "import _io\n_io.open_code = opener\n",
    "setattr(_io, 'open_code', ...)": 'import _io\nsetattr(_io, "open_code", opener)\n',
    "_io.FileIO =": "import _io\n_io.FileIO = Reader\n",
    "marshal.loads =": "import marshal\nmarshal.loads = reader\n",
    "_imp.create_dynamic =": "import _imp\n_imp.create_dynamic = loader\n",
    "setattr(_imp, ...)": 'import _imp\nsetattr(_imp, "exec_dynamic", loader)\n',
    "_frozen_importlib's helper": (
        "import _frozen_importlib\n_frozen_importlib._call_with_frames_removed = call\n"
    ),
}

# What stays allowed (each passes, before and after).
ALLOWED = {
    "reading the tables": "finders = list(sys.meta_path)\nhooks = len(sys.path_hooks)\n",
    "list.insert on a list of one's own": "items = []\nlist.insert(items, 0, 1)\n",
    "operator.setitem on a dict of one's own": 'd = {}\noperator.setitem(d, "k", 1)\n',
    "dict.update on a dict of one's own": "d = {}\ndict.update(d, {1: 2})\n",
    "type() of one's own list": "items = []\ntype(items).append(items, 1)\n",
    "io.open_code called": 'import io\nwith io.open_code("x.py") as f:\n    f.read()\n',
    "marshal.loads called": "import marshal\ncode = marshal.dumps(1)\nmarshal.loads(code)\n",
    "setattr on another module": 'import json\nsetattr(json, "open_code", 1)\n',
}


@pytest.mark.parametrize("plant", list(PLANTED))
def test_each_machinery_write_is_sast102(plant: str) -> None:
    found = scan_source(HEAD + PLANTED[plant], path="src/model_io.py")
    assert "SAST102" in {f.rule for f in found}, found
    assert all(f.line > 1 for f in found)


@pytest.mark.parametrize("plant", list(ALLOWED))
def test_what_a_project_may_keep_doing_passes(plant: str) -> None:
    found = scan_source(HEAD + ALLOWED[plant], path="src/model_io.py")
    assert "SAST102" not in {f.rule for f in found}, found


def test_open_code_replaced_makes_an_import_run_another_file(tmp_path: Path) -> None:
    """The attack for real: with ``_io.open_code`` replaced, ``import mod_a`` runs
    ``data/evil.py`` (``python -I``, no bytecode cache)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "evil.py").write_text('print("EVIL RAN")\n', encoding="utf-8")
    (tmp_path / "mod_a.py").write_text('print("mod_a")\n', encoding="utf-8")
    code = (
        "import sys, _io\n"
        "sys.dont_write_bytecode = True\n"
        "sys.path.insert(0, '.')\n"
        "real = _io.open_code\n"
        "_io.open_code = lambda p: real(p.replace('mod_a.py', 'data/evil.py'))\n"
        "import mod_a\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == "EVIL RAN", done.stdout + done.stderr


def test_the_sast_gate_fails_a_planted_open_code_patch(tmp_path: Path) -> None:
    plant = (
        "import _io\n\nreal = _io.open_code\n\n\n"
        "def opener(path: str) -> object:\n"
        '    return real(path.replace("model.py", "data/evil.py"))\n\n\n'
        "_io.open_code = opener\n"
    )
    done = _sast(_project(tmp_path / "project", plant))
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "SAST102" in out
    assert "Traceback" not in out
