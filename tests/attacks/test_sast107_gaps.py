"""SAST107's forms left "Not covered" by red team 14 (sast107d): a child interpreter on code no
scan read, each a way for a pull request's author to run ``data/evil.py`` (or ``data/``'s code)
through the project's own tooling. One table per form:

1. ``os.chdir(...)`` (or ``contextlib.chdir``) before a child: the working folder decides what
   ``-m``, importing ``-c`` code and a relative script run;
2. ``-I -m`` a module computed at run time: ``-I`` leaves every installed module, and some run
   what they are given (``runpy``, ``pip``, ``pytest``);
3. modules that run what they are given: ``pytest``, ``pip install|wheel|download`` of a path
   (a build backend, ``setup.py``), ``unittest`` discovery, ``trace -f`` (a pickle), ``coverage
   run``, ``build``, ``IPython``/``debugpy`` scripts;
4. a whole command line passed in as a parameter to a helper that runs it;
5. Python at a computed path (``f"{venv}/bin/python3"``, ``os.path.join(venv, "bin",
   "python")``, ``Path(venv) / "bin" / "python"``) and a committed interpreter in the tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gates.unsafe_load import UnsafeLoad, scan
from tests.attacks.test_redteam10_unsafe_loaders import _sast
from tests.attacks.test_sast_child_code import _plant

HEAD = "import contextlib, os, shutil, subprocess, sys\nfrom pathlib import Path\n"
HERE = "ROOT = Path(__file__).resolve().parent.parent\n"


def _scan(root: Path, source: str, other: str | None = None) -> list[UnsafeLoad]:
    """The scanned file ``src/model_io.py`` (and ``src/caller.py`` when ``other`` is given) in a
    project whose ``data/`` no scan reads."""
    (root / "src").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "evil.py").write_text("import os\n", encoding="utf-8")
    (root / "src" / "model_io.py").write_text(HEAD + HERE + source, encoding="utf-8")
    files = [root / "src" / "model_io.py"]
    if other is not None:
        (root / "src" / "caller.py").write_text(other, encoding="utf-8")
        files.append(root / "src" / "caller.py")
    return scan(files, root=root, allowed=[])


def _sast107(found: list[UnsafeLoad]) -> list[UnsafeLoad]:
    return [f for f in found if f.rule == "SAST107"]


# 1. The working folder changed for the whole process, then a child started without cwd=.
CHDIR = {
    "os.chdir then -m": 'os.chdir("data")\nsubprocess.run([sys.executable, "-m", "evil"])\n',
    "os.chdir then -c import": (
        'os.chdir("data")\nsubprocess.run([sys.executable, "-c", "import evil"])\n'
    ),
    "os.chdir then a relative script": (
        'os.chdir("data")\nsubprocess.run([sys.executable, "src/model_io.py"])\n'
    ),
    "os.chdir computed then -m": (
        'def go(folder):\n    os.chdir(folder)\n    subprocess.run(["python3", "-m", "evil"])\n'
    ),
    "os.chdir in a function, the child elsewhere": (
        'def setup():\n    os.chdir(ROOT / "data")\n'
        'def later():\n    subprocess.run([sys.executable, "-m", "evil"])\n'
    ),
    "from os import chdir as cd": (
        'from os import chdir as cd\ncd("data")\nsubprocess.run([sys.executable, "-m", "evil"])\n'
    ),
    "contextlib.chdir": (
        'with contextlib.chdir("data"):\n    subprocess.run([sys.executable, "-m", "evil"])\n'
    ),
    "os.fchdir": (
        'fd = os.open("data", os.O_RDONLY)\nos.fchdir(fd)\n'
        'subprocess.run([sys.executable, "-m", "evil"])\n'
    ),
    "monkeypatch.chdir (any .chdir)": (
        'def test_it(monkeypatch):\n    monkeypatch.chdir("data")\n'
        '    subprocess.run([sys.executable, "-m", "evil"])\n'
    ),
    "os.chdir then a shell's -m": 'os.chdir("data")\nos.system("python3 -m evil")\n',
}
CHDIR_OTHER_MODULE = 'import os\nos.chdir("data")\n'
CHDIR_ALLOWED = {
    "os.chdir then -I -m": 'os.chdir("data")\nsubprocess.run([sys.executable, "-I", "-m", "json.tool"])\n',
    "os.chdir then -P -c import": (
        'os.chdir("data")\nsubprocess.run([sys.executable, "-P", "-c", "import json"])\n'
    ),
    "os.chdir to a scanned folder": 'os.chdir("src")\nsubprocess.run([sys.executable, "-m", "model_io"])\n',
    "os.chdir to the file's folder": (
        "os.chdir(os.path.dirname(os.path.abspath(__file__)))\n"
        'subprocess.run([sys.executable, "-m", "model_io"])\n'
    ),
    "os.chdir then an absolute scanned script": (
        'os.chdir("data")\nsubprocess.run([sys.executable, str(ROOT / "src" / "model_io.py")])\n'
    ),
    "os.chdir then another program": 'os.chdir("data")\nsubprocess.run(["git", "status"])\n',
    "os.chdir then -c without imports": (
        'os.chdir("data")\nsubprocess.run([sys.executable, "-c", "print(1)"])\n'
    ),
}


@pytest.mark.parametrize("plant", list(CHDIR))
def test_chdir_before_a_child(tmp_path: Path, plant: str) -> None:
    found = _sast107(_scan(tmp_path, CHDIR[plant]))
    assert found, plant
    assert all(f.path == "src/model_io.py" and f.line > 0 for f in found)


def test_chdir_in_another_scanned_module(tmp_path: Path) -> None:
    """The working folder is the process's: a chdir in any module scanned with it counts."""
    source = 'subprocess.run([sys.executable, "-m", "evil"])\n'
    found = _sast107(_scan(tmp_path, source, other=CHDIR_OTHER_MODULE))
    assert any("chdir" in f.message and "src/caller.py" in f.message for f in found), found


@pytest.mark.parametrize("plant", list(CHDIR_ALLOWED))
def test_chdir_that_keeps_scanned_code_passes(tmp_path: Path, plant: str) -> None:
    assert _sast107(_scan(tmp_path, CHDIR_ALLOWED[plant])) == []


# 2. -I -m a module computed at run time: any installed module, some of which run what follows.
ISOLATED = {
    "-I -m a parameter, called with runpy": (
        "def tool(module, *args):\n"
        '    return subprocess.run([sys.executable, "-I", "-m", module, *args])\n'
        'tool("runpy", "data/evil.py")\n'
    ),
    "-I -m a parameter, called with cProfile": (
        "def tool(module, path):\n"
        '    return subprocess.run((sys.executable, "-I", "-m", module, path))\n'
        'tool("cProfile", str(ROOT / "data" / "evil.py"))\n'
    ),
    "-I -m a parameter passed around": (
        "def tool(module):\n"
        '    return subprocess.run([sys.executable, "-I", "-m", module])\n'
        "jobs = map(tool, names)\n"
    ),
    "-I -m a parameter never called here": (
        'def tool(module):\n    return subprocess.run([sys.executable, "-I", "-m", module])\n'
    ),
    "-I -m a computed name": (
        'subprocess.run([sys.executable, "-I", "-m", os.environ["TOOL"], "data/evil.py"])\n'
    ),
    "-I -m a parameter called with a computed name": (
        "def tool(module):\n"
        '    return subprocess.run([sys.executable, "-I", "-m", module])\n'
        "tool(sys.argv[1])\n"
    ),
    "-I -m a name bound to a runner": (
        'TOOL = "runpy"\nsubprocess.run([sys.executable, "-I", "-m", TOOL, "data/evil.py"])\n'
    ),
    "-I -m from a literal list, one a runner": (
        'for m in ("ruff", "pytest"):\n    subprocess.run([sys.executable, "-I", "-m", m])\n'
    ),
}
# The project's own form (gates/_tools.py's run_module), called from another scanned module.
TOOLS = (
    "def run_module(module: str, *args: str, cwd: Path) -> object:\n"
    '    command = (sys.executable, "-I", "-m", module, *args)\n'
    "    return subprocess.run(command, cwd=cwd, check=False)\n"
)
TOOLS_CALLERS = {
    "literal tools": (
        "from src.model_io import run_module\n"
        'run_module("ruff", "check", ".", cwd=ROOT)\nrun_module("bandit", "-r", ".", cwd=ROOT)\n',
        False,
    ),
    "literal tools, *args and **options after them (gates/lint.py, gates/audit.py)": (
        "from src.model_io import run_module\n"
        'run_module("ruff", *common, cwd=ROOT)\nrun_module("pip_audit", *args, **options)\n',
        False,
    ),
    "*args giving the module": (
        "from src.model_io import run_module\nrun_module(*names, cwd=ROOT)\n",
        True,
    ),
    "imported under another name": (
        "from src.model_io import run_module as tool\ntool(name, cwd=ROOT)\n",
        True,
    ),
    "a runner through the helper": (
        'from src.model_io import run_module\nrun_module("runpy", "data/evil.py", cwd=ROOT)\n',
        True,
    ),
    "pytest through the helper": (
        'from src import model_io\nmodel_io.run_module("pytest", "data", cwd=ROOT)\n',
        True,
    ),
    "a computed module through the helper": (
        "from src.model_io import run_module\nrun_module(name, cwd=ROOT)\n",
        True,
    ),
    "the helper passed around": (
        "from src.model_io import run_module\njobs = [run_module]\n",
        True,
    ),
}
ISOLATED_ALLOWED = {
    "-I -m a literal": 'subprocess.run([sys.executable, "-I", "-m", "ruff", "check", "."])\n',
    "-I -m a name bound to a literal": (
        'TOOL = "bandit"\nsubprocess.run([sys.executable, "-I", "-m", TOOL, "-r", "src"])\n'
    ),
    "-I -m a parameter, called with literals": (
        "def tool(module, *args):\n"
        '    return subprocess.run([sys.executable, "-I", "-m", module, *args])\n'
        'tool("ruff", "check", ".")\ntool(module="bandit")\n'
    ),
    "-I -m from a literal list": (
        'for m in ("ruff", "bandit"):\n    subprocess.run([sys.executable, "-I", "-m", m])\n'
    ),
}


@pytest.mark.parametrize("plant", list(ISOLATED))
def test_isolated_computed_module(tmp_path: Path, plant: str) -> None:
    found = _sast107(_scan(tmp_path, ISOLATED[plant]))
    assert found, plant


@pytest.mark.parametrize("plant", list(TOOLS_CALLERS))
def test_the_tools_helper_is_judged_at_its_callers(tmp_path: Path, plant: str) -> None:
    caller, bad = TOOLS_CALLERS[plant]
    found = _sast107(
        _scan(tmp_path, TOOLS, other="from pathlib import Path\nROOT = Path()\n" + caller)
    )
    assert bool(found) is bad, found
    assert all("run_module" in f.message for f in found)


@pytest.mark.parametrize("plant", list(ISOLATED_ALLOWED))
def test_isolated_literal_modules_pass(tmp_path: Path, plant: str) -> None:
    assert _sast107(_scan(tmp_path, ISOLATED_ALLOWED[plant])) == []


# 3. Modules that run what they are given.
RUNNERS = {
    "-m pytest a path": 'subprocess.run([sys.executable, "-m", "pytest", "data/evil.py"])\n',
    "-m pytest alone (collects the tree, conftest.py)": (
        'subprocess.run([sys.executable, "-m", "pytest", "-q"])\n'
    ),
    "-I -m pytest": 'subprocess.run([sys.executable, "-I", "-m", "pytest", "-x"])\n',
    "-m py.test": 'subprocess.run([sys.executable, "-m", "py.test", "data"])\n',
    "-m pytest -p a plugin": (
        'subprocess.run([sys.executable, "-m", "pytest", "-p", "data.evil", "src"])\n'
    ),
    "-m pip install .": 'subprocess.run([sys.executable, "-m", "pip", "install", "."])\n',
    "-m pip install a path": (
        'subprocess.run([sys.executable, "-m", "pip", "install", "data/pkg"])\n'
    ),
    "-m pip install -e": (
        'subprocess.run([sys.executable, "-m", "pip", "install", "-e", "data/pkg"])\n'
    ),
    "-m pip install -r": (
        'subprocess.run([sys.executable, "-I", "-m", "pip", "install", "-r", "data/reqs.txt"])\n'
    ),
    "-m pip wheel .": 'subprocess.run([sys.executable, "-m", "pip", "wheel", "."])\n',
    "-m pip download a path": (
        'subprocess.run([sys.executable, "-m", "pip", "download", "./data/pkg.tar.gz"])\n'
    ),
    "-m pip install --find-links a folder": (
        'subprocess.run([sys.executable, "-m", "pip", "install", "--find-links", "data", "evil"])\n'
    ),
    "-m pip install -fdata": (
        'subprocess.run([sys.executable, "-m", "pip", "install", "-fdata", "evil"])\n'
    ),
    "-m pip install a file: URL": (
        'subprocess.run([sys.executable, "-m", "pip", "install", "file:///tmp/x/data"])\n'
    ),
    "-m pip install a name (an index's package: its setup.py, a wheel's .pth)": (
        'subprocess.run([sys.executable, "-m", "pip", "install", "requests==2.32.3"])\n'
    ),
    "-m pip install computed": (
        'subprocess.run([sys.executable, "-m", "pip", "install", package])\n'
    ),
    "-m pip with options first": (
        'subprocess.run([sys.executable, "-m", "pip", "-q", "install", "."])\n'
    ),
    "-m pip computed command": 'subprocess.run([sys.executable, "-m", "pip", verb, "."])\n',
    "-m unittest alone (discovery)": 'subprocess.run([sys.executable, "-m", "unittest"])\n',
    "-m unittest discover": (
        'subprocess.run([sys.executable, "-m", "unittest", "discover", "-s", "src"])\n'
    ),
    "-m unittest -v alone": 'subprocess.run([sys.executable, "-m", "unittest", "-v"])\n',
    "-m doctest a text file": 'subprocess.run([sys.executable, "-m", "doctest", "data/x.txt"])\n',
    "-m trace -f (a pickle it loads)": (
        'subprocess.run([sys.executable, "-m", "trace", "-r", "-f", "data/counts"])\n'
    ),
    "-m trace --file=": (
        'subprocess.run([sys.executable, "-m", "trace", "--report", "--file=counts"])\n'
    ),
    "-m coverage run": (
        'subprocess.run([sys.executable, "-m", "coverage", "run", "data/evil.py"])\n'
    ),
    "-m coverage run -m": (
        'subprocess.run([sys.executable, "-m", "coverage", "run", "-m", "data.evil"])\n'
    ),
    "-m build": 'subprocess.run([sys.executable, "-m", "build", "--wheel"])\n',
    "-m IPython a script": 'subprocess.run([sys.executable, "-m", "IPython", "data/evil.py"])\n',
    "-m debugpy a script": (
        'subprocess.run([sys.executable, "-m", "debugpy", "--listen", "5678", "data/evil.py"])\n'
    ),
    "-m profile a module": (
        'subprocess.run([sys.executable, "-m", "profile", "-m", "data.evil"])\n'
    ),
    "-m timeit -s computed": (
        'subprocess.run([sys.executable, "-m", "timeit", "-s", setup, "1"])\n'
    ),
    "-m code": 'subprocess.run([sys.executable, "-m", "code"])\n',
    "a shell's -m pip install .": 'os.system("python3 -m pip install .")\n',
    # found reviewing this change as an attacker: other modules, and the tools' own programs
    "-m nox (the tree's noxfile.py)": 'subprocess.run([sys.executable, "-m", "nox", "-s", "x"])\n',
    "-m tox (the tree's tox.ini commands)": 'subprocess.run([sys.executable, "-m", "tox"])\n',
    "-m uv pip install": 'subprocess.run([sys.executable, "-m", "uv", "pip", "install", "."])\n',
    "-m sphinx (the tree's conf.py)": (
        'subprocess.run([sys.executable, "-m", "sphinx", "docs", "build"])\n'
    ),
    "the pytest program": 'subprocess.run(["pytest", "-q", "data"])\n',
    "the pip program": 'subprocess.run(["pip", "install", "-e", "."])\n',
    "the pip3 program after env": 'subprocess.run(["env", "pip3", "install", "."])\n',
    "the coverage program": 'subprocess.run(["coverage", "run", "data/evil.py"])\n',
    "a shell's pytest": 'os.system("cd src && pytest")\n',
    # bypasses of this branch's first version: a runner run by a runner, another name
    "-m runpy pytest": 'subprocess.run([sys.executable, "-m", "runpy", "pytest", "data"])\n',
    "-m cProfile -m pip install .": (
        'subprocess.run([sys.executable, "-m", "cProfile", "-m", "pip", "install", "."])\n'
    ),
    "-m coverage run -m pytest": (
        'subprocess.run([sys.executable, "-m", "coverage", "run", "-m", "pytest"])\n'
    ),
    "-m pip.__main__ install .": (
        'subprocess.run([sys.executable, "-m", "pip.__main__", "install", "."])\n'
    ),
    "pip3.11 by its path": 'subprocess.run(["/usr/bin/pip3.11", "install", "."])\n',
}
RUNNERS_ALLOWED = {
    "-m pip --version": 'subprocess.run([sys.executable, "-m", "pip", "--version"])\n',
    "-m pip list": 'subprocess.run([sys.executable, "-m", "pip", "list", "--format", "json"])\n',
    "-m pip uninstall": 'subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "x"])\n',
    "-m pip freeze": 'subprocess.run([sys.executable, "-I", "-m", "pip", "freeze"])\n',
    "-m unittest a scanned module": (
        'subprocess.run([sys.executable, "-m", "unittest", "src.model_io"])\n'
    ),
    "-m trace --count a scanned file": (
        'subprocess.run([sys.executable, "-m", "trace", "--count", "src/model_io.py"])\n'
    ),
    # sast108: python -m coverage imports the plugins of the tree's configuration (any command):
    # these pass only with --rcfile naming no file (tests/attacks/test_sast107_open.py plants more)
    "-m coverage report": (
        'subprocess.run([sys.executable, "-m", "coverage", "report", "--rcfile=/dev/null"])\n'
    ),
    "-m coverage run a scanned file": (
        'subprocess.run([sys.executable, "-m", "coverage", "run", "--rcfile", "/dev/null", '
        '"src/model_io.py"])\n'
    ),
    "-m json.tool": 'subprocess.run([sys.executable, "-m", "json.tool", "data/x.json"])\n',
    "the pip program listing": 'subprocess.run(["pip", "list"])\n',
    # sast111: coverage's reports put the working folder first on sys.path (test_sast111.py)
    "the coverage program reporting": (
        'subprocess.run(["coverage", "html", "--rcfile=/dev/null"])\n'
    ),
    "-m venv": 'subprocess.run([sys.executable, "-m", "venv", "--clear", "build/env"])\n',
}


@pytest.mark.parametrize("plant", list(RUNNERS))
def test_modules_that_run_what_they_are_given(tmp_path: Path, plant: str) -> None:
    found = _sast107(_scan(tmp_path, RUNNERS[plant]))
    assert found, plant
    assert all(f.path == "src/model_io.py" and f.line > 0 for f in found)


@pytest.mark.parametrize("plant", list(RUNNERS_ALLOWED))
def test_modules_on_nothing_unscanned_pass(tmp_path: Path, plant: str) -> None:
    assert _sast107(_scan(tmp_path, RUNNERS_ALLOWED[plant])) == []


# 4. A whole command line passed to a helper that runs it: the call site's line decides.
HELPER = "def run(command, **kw):\n    return subprocess.run(command, check=True, **kw)\n"
WHOLE_LINES = {
    "a literal list": 'run(["python3", "data/evil.py"])\n',
    "a literal tuple": 'run(("python3", "data/evil.py"))\n',
    "a name bound to a list": 'CMD = ["python3", "data/evil.py"]\nrun(CMD)\n',
    "a split string": 'run("python3 data/evil.py".split())\n',
    "shlex.split": 'import shlex\nrun(shlex.split("python3 -m data.evil"))\n',
    "by keyword": 'run(command=["python3", "-m", "runpy", "data/evil.py"])\n',
    "sys.executable on a computed script": "run([sys.executable, name])\n",
    "a method": (
        "class Tool:\n    def go(self, argv):\n        return subprocess.run(argv)\n"
        '    def main(self):\n        return self.go(["python3", "data/evil.py"])\n'
    ),
    "through two helpers": (
        'def outer(argv):\n    return run(argv)\nouter(["python3", "data/evil.py"])\n'
    ),
    "the helper's string run by a shell": (
        'def sh(line):\n    return subprocess.run(line, shell=True)\nsh("python3 data/evil.py")\n'
    ),
    "*argv given to the helper": (
        'def run_all(*argv):\n    return subprocess.run(argv)\nrun_all("python3", "data/evil.py")\n'
    ),
    "*argv after a fixed word": (
        "def run_all(cwd, *argv):\n    return subprocess.run(list(argv), cwd=cwd)\n"
        'run_all(".", "python3", "data/evil.py")\n'
    ),
    "the helper starts the line": (
        'def py(*argv):\n    return subprocess.run([sys.executable, *argv])\npy("data/evil.py")\n'
    ),
}
WHOLE_LINES_ALLOWED = {
    "a scanned script": 'run(["python3", "src/model_io.py"])\n',
    "another program": 'run(["git", "status"])\nrun("ls -l".split())\n',
    "-I -m a literal tool": 'run([sys.executable, "-I", "-m", "ruff", "check"])\n',
    "a display that is no command": 'NAMES = ("python", "diff")\nprint(NAMES)\n',
}


@pytest.mark.parametrize("plant", list(WHOLE_LINES))
def test_a_whole_command_line_given_to_a_helper(tmp_path: Path, plant: str) -> None:
    found = _sast107(_scan(tmp_path, HELPER + WHOLE_LINES[plant]))
    assert found, plant


def test_a_whole_command_line_from_another_module(tmp_path: Path) -> None:
    caller = 'from src.model_io import run\nrun(["python3", "data/evil.py"])\n'
    found = _sast107(_scan(tmp_path, HELPER, other=caller))
    assert found
    assert all("run()" in f.message for f in found), found


@pytest.mark.parametrize("plant", list(WHOLE_LINES_ALLOWED))
def test_a_scanned_command_line_given_to_a_helper_passes(tmp_path: Path, plant: str) -> None:
    assert _sast107(_scan(tmp_path, HELPER + WHOLE_LINES_ALLOWED[plant])) == []


# 5. Python at a path computed at run time, or a committed interpreter in the tree.
INTERPRETERS = {
    "an f-string venv path": 'subprocess.run([f"{venv}/bin/python3", "data/evil.py"])\n',
    "os.path.join(venv, 'bin', 'python')": (
        'subprocess.run([os.path.join(venv, "bin", "python"), "data/evil.py"])\n'
    ),
    "Path(venv) / 'bin' / 'python'": (
        'subprocess.run([Path(venv) / "bin" / "python", "data/evil.py"])\n'
    ),
    "str(Path / python3.11)": (
        'subprocess.run([str(Path(venv, "bin") / "python3.11"), "-m", "evil"], cwd="data")\n'
    ),
    "venv + '/bin/python'": 'subprocess.run([venv + "/bin/python", "data/evil.py"])\n',
    "a name bound to a venv path": (
        'PY = os.path.join(sys.prefix, "bin", "python3")\nsubprocess.run([PY, "data/evil.py"])\n'
    ),
    "shutil.which of a computed name bound to python": (
        'name = "python3"\nexe = shutil.which(name) or "python3"\nsubprocess.run([exe, "data/evil.py"])\n'
    ),
    "os.environ.get with a Python default": (
        'subprocess.run([os.environ.get("PYTHON", sys.executable), "data/evil.py"])\n'
    ),
    "os.getenv or sys.executable": (
        'subprocess.run([os.getenv("PYTHON") or sys.executable, "data/evil.py"])\n'
    ),
    "a conditional": ('subprocess.run([sys.executable if fast else "pypy3", "data/evil.py"])\n'),
    "a committed interpreter in the tree": (
        'subprocess.run(["data/bin/python3", "src/model_io.py"])\n'
    ),
    "a committed interpreter, ./": 'subprocess.run(["./data/python3", "-c", "print(1)"])\n',
    "a committed interpreter by the folder rule": (
        'subprocess.run([str(ROOT / "data" / "bin" / "python3"), "-c", "print(1)"])\n'
    ),
    "python3.{minor} as an f-string": (
        'subprocess.run([f"python3.{sys.version_info.minor}", "-m", "evil"], cwd="data")\n'
    ),
    "python%d.%d %-formatted": (
        'subprocess.run(["python%d.%d" % sys.version_info[:2], "data/evil.py"])\n'
    ),
    "python{}.format": 'subprocess.run(["python{}".format(3), "data/evil.py"])\n',
    "a folder + 'python3'": 'subprocess.run([bindir + "python3", "data/evil.py"])\n',
    "sys.executable.replace": (
        'subprocess.run([sys.executable.replace("python", "pypy"), "data/evil.py"])\n'
    ),
    "Path(sys.executable).with_name": (
        'subprocess.run([Path(sys.executable).with_name("python3"), "data/evil.py"])\n'
    ),
    "os.path.basename(sys.executable)": (
        'subprocess.run([os.path.basename(sys.executable), "data/evil.py"])\n'
    ),
    "executable= a venv path": (
        'subprocess.run(["x", "data/evil.py"], executable=os.path.join(venv, "bin", "python"))\n'
    ),
}
INTERPRETERS_ALLOWED = {
    "a venv python on a scanned script": (
        'subprocess.run([os.path.join(venv, "bin", "python"), "src/model_io.py"])\n'
    ),
    "a venv path to another program": (
        'subprocess.run([os.path.join(venv, "bin", "pip"), "--version"])\n'
    ),
    "a system interpreter": 'subprocess.run(["/usr/bin/python3", "src/model_io.py"])\n',
    "an f-string that is no interpreter": 'subprocess.run([f"{tool}/bin/ruff", "check"])\n',
}


@pytest.mark.parametrize("plant", list(INTERPRETERS))
def test_python_at_a_computed_path(tmp_path: Path, plant: str) -> None:
    found = _sast107(_scan(tmp_path, INTERPRETERS[plant]))
    assert found, plant


@pytest.mark.parametrize("plant", list(INTERPRETERS_ALLOWED))
def test_a_computed_path_on_scanned_code_passes(tmp_path: Path, plant: str) -> None:
    assert _sast107(_scan(tmp_path, INTERPRETERS_ALLOWED[plant])) == []


# The real thing: one scanned module with a form of each family, each really running
# data/evil.py (an unscanned pickle.loads), and the real sast gate, which PASSED it before.
PLANT = """import os
import subprocess  # nosec B404
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(command):
    return subprocess.run(command, capture_output=True, text=True, check=False)  # nosec B603 SAST107


def tool(module, *args):
    command = (sys.executable, "-I", "-m", module, *args)
    return subprocess.run(command, capture_output=True, text=True, check=False)  # nosec B603 SAST107


def venv_python():
    python = os.path.join(ROOT, "data", "bin", "python3")
    command = [python, "-c", "print('a scanned one-liner')"]
    return subprocess.run(command, capture_output=True, text=True, check=False)  # nosec B603 SAST107


def moved():
    os.chdir(ROOT / "data")
    command = [sys.executable, "-m", "evil"]
    return subprocess.run(command, capture_output=True, text=True, check=False)  # nosec B603 SAST107


if __name__ == "__main__":
    print(run(["python3", "data/evil.py"]).stdout, tool("cProfile", "data/evil.py").stdout)
    print(venv_python().stdout, moved().stdout)
"""


def _planted(tmp_path: Path) -> Path:
    return _plant(tmp_path, PLANT)  # a scanned src/, data/evil.py, a committed data/bin/python3


def test_each_family_really_runs_the_unscanned_file(tmp_path: Path) -> None:
    root = _planted(tmp_path)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    done = subprocess.run(
        [sys.executable, "-I", str(root / "src" / "model_io.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=root,
        env={**os.environ, "PATH": path},  # python3 is this interpreter, as on a runner
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("unscanned pickle.loads") == 4, done.stdout


def test_the_sast_gate_fails_each_family(tmp_path: Path) -> None:
    done = _sast(_planted(tmp_path))
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    lines = [n for n, text in enumerate(PLANT.splitlines(), 1) if text.endswith("SAST107")]
    assert len(lines) == 4
    for line in lines:
        assert f"SAST107 src/model_io.py:{line}" in out, out
