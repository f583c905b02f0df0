"""Planted attacks (sastgaps, 7 December): code a child interpreter runs that no scan read.

Rows 21 and 65 of ``docs/trust-model.md`` left three ways open for a scanned module to run code
neither bandit nor the unsafe-load check reads, each PASSED by the sast gate (red before):

1. a child interpreter on a file or module named at run time:
   ``subprocess.run([sys.executable, str(ROOT / "data" / name)])``, ``os.execv``, ``-m`` with a
   computed module, ``sys.executable`` under another name, ``Popen(["python", ...])``, a
   ``multiprocessing`` spawn interpreter replaced by ``set_executable``;
2. ``PYTHONPATH`` (and the other ``PYTHON*`` variables that make Python read code from elsewhere)
   handed to a child: in an ``env=`` dict, ``os.environ``, ``os.putenv``, ``.update``;
3. the standard library's path and import machinery patched at run time
   (``setattr(os.path, "dirname", f)``, ``sys.meta_path``, ``builtins.__import__``).

The first two are SAST107; the third extends SAST102 (replacing ``os.path.dirname`` was
SAST102 already). A child on a scanned file, ``-m`` an installed module, ``-I -m`` a parameter
every call gives a literal tool (sast107d: a computed one fails closed, ``test_sast107_gaps.py``)
and ``PYTHONPATH`` set to the file's own folder stay allowed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gates.unsafe_load import scan, scan_source
from tests.attacks.test_redteam10_unsafe_loaders import _project, _sast

HEAD = "import os, subprocess, sys\nfrom pathlib import Path\nROOT = Path(__file__).resolve().parent.parent\n"

# Gap 1: a child interpreter on a file or module no scan read (each red before).
CHILDREN = {
    "a computed path": 'subprocess.run([sys.executable, str(ROOT / "data" / name)])\n',
    "os.execv": 'os.execv(sys.executable, [sys.executable, str(ROOT / "data" / name)])\n',
    "os.execl": "os.execl(sys.executable, sys.executable, path)\n",
    "os.spawnv": "os.spawnv(os.P_WAIT, sys.executable, [sys.executable, path])\n",
    "env before python": 'subprocess.run(["/usr/bin/env", "-i", "A=1", "python3", path])\n',
    "Popen python": 'subprocess.Popen(["python3", path])\n',
    "flags first": 'subprocess.run([sys.executable, "-I", "-X", "dev", path])\n',
    "-m computed": 'subprocess.run([sys.executable, "-m", modname])\n',
    "a literal file no scan reads": 'subprocess.run([sys.executable, "data/evil.py"])\n',
    "import sys as s": "import sys as s\nsubprocess.run([s.executable, path])\n",
    "getattr(sys, 'executable')": 'subprocess.run([getattr(sys, "executable"), path])\n',
    "os.environ['_']": 'subprocess.run([os.environ["_"], path])\n',
    "shutil.which": 'import shutil\nsubprocess.run([shutil.which("python3"), path])\n',
    "a name for the interpreter": 'import shutil\nexe = shutil.which("python3")\nsubprocess.run([exe, path])\n',
    "a command list bound to a name": "cmd = [sys.executable, path]\nsubprocess.run(cmd)\n",
    "a command list appended to": (
        'cmd = [sys.executable, "-I"]\ncmd.append(path)\nsubprocess.check_call(cmd)\n'
    ),
    "a tuple added to": "cmd = (sys.executable,) + (path,)\nsubprocess.run(cmd)\n",
    "starred arguments": "subprocess.run([sys.executable, *argv])\n",
    "an f-string command": 'subprocess.run(f"{sys.executable} {path}", shell=True)\n',
    "a shell string": 'os.system("python " + path)\n',
    "asyncio": "import asyncio\nasyncio.create_subprocess_exec(sys.executable, path)\n",
    "python reads stdin": 'subprocess.run([sys.executable, "-"], input=code)\n',
    "python alone reads stdin": "subprocess.run([sys.executable], input=code)\n",
    "a command handed to a helper": (
        "def run(command):\n    return subprocess.run(command)\n"
        'run([sys.executable, str(ROOT / "data" / name)])\n'
    ),
    "a sum handed to a helper": "def run(c):\n    pass\nrun([sys.executable] + argv)\n",
    "args=": 'subprocess.run(args=["python3", path])\n',
    "executable=": 'subprocess.Popen(["ls", "data/evil.py"], executable=sys.executable)\n',
    "a literal python handed to a helper": (
        'def run(c):\n    pass\nrun(["python3", str(ROOT / "data" / name)])\n'
    ),
    "a literal python -m handed to a helper": 'CMD = ("python3", "-m", modname)\n',
    "a harmless spelling 16 times, then the attack": (
        'cmd = ["python3", "src/model_io.py"]\n' * 16
        + 'cmd = ["python3", path]\nsubprocess.run(cmd)\n'
    ),
    "pty.spawn": 'import pty\npty.spawn([sys.executable, str(ROOT / "data" / name)])\n',
    "set_executable": (
        'import multiprocessing\nmultiprocessing.set_executable(str(ROOT / "data" / "python"))\n'
    ),
    "a spawn context's set_executable": (
        'import multiprocessing as mp\nctx = mp.get_context("spawn")\nctx.set_executable(exe)\n'
    ),
    # Names bound to names past the depth the check follows (20) stand for Python (fail
    # closed); a chain of 30 was found before too (each level restarted the count), at a cost
    # that grew as 3 to the power of the chain's length when each name was bound three times.
    "names bound to names past the depth followed": (
        "".join(f"a{i} = a{i + 1}\n" for i in range(30))
        + 'a30 = "python3"\nsubprocess.run([a0, path])\n'
    ),
}
# Gap 2: PYTHON* variables handed to a child (each red before).
ENVIRONMENTS = {
    "env= PYTHONPATH": (
        'subprocess.run([sys.executable, "-c", "import evil"], env={"PYTHONPATH": "data"})\n'
    ),
    "**os.environ and PYTHONPATH": (
        'subprocess.run(["python", "-m", "x"], env={**os.environ, "PYTHONPATH": str(ROOT / "data")})\n'
    ),
    "os.environ | {...}": 'env = os.environ | {"PYTHONPATH": "data"}\n',
    "os.environ[...] =": 'os.environ["PYTHONPATH"] = "data"\n',
    "a dict built then passed": (
        'env = dict(os.environ)\nenv["PYTHONPATH"] = "data"\nsubprocess.run(["python", "x.py"], env=env)\n'
    ),
    "dict(..., PYTHONPATH=)": 'env = dict(os.environ, PYTHONPATH="data")\n',
    "os.environ.update(...)": 'os.environ.update(PYTHONPATH="data")\n',
    "os.environ.update({...})": 'os.environ.update({"PYTHONPATH": "data"})\n',
    "os.environ.setdefault": 'os.environ.setdefault("PYTHONPATH", "data")\n',
    "os.putenv": 'os.putenv("PYTHONPATH", "data")\n',
    "a key under a name": 'KEY = "PYTHONPATH"\nos.environ[KEY] = "data"\n',
    "added to in place": 'os.environ["PYTHONPATH"] += ":data"\n',
    "PYTHONPATH with the folder and more": (
        'os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), "data"])\n'
    ),
    "PYTHONSTARTUP": 'os.environ["PYTHONSTARTUP"] = "data/start.py"\n',
    "PYTHONHOME": 'os.environ["PYTHONHOME"] = "data/home"\n',
    "PYTHONUSERBASE": 'os.environ["PYTHONUSERBASE"] = "data/user"\n',
    "PYTHONINSPECT": 'os.environ["PYTHONINSPECT"] = "1"\n',
    "PYTHONEXECUTABLE": 'os.environ["PYTHONEXECUTABLE"] = "data/python"\n',
    "PYTHONPYCACHEPREFIX": 'os.environ["PYTHONPYCACHEPREFIX"] = "data/pyc"\n',
    "PYTHONSAFEPATH off": 'os.environ["PYTHONSAFEPATH"] = ""\n',
    "PYTHONBREAKPOINT computed": 'os.environ["PYTHONBREAKPOINT"] = hook\n',
    "a computed name into os.environ": "os.environ[name] = value\n",
    "a computed name to os.putenv": "os.putenv(name, value)\n",
    "os.environ.update of a computed mapping": "os.environ.update(settings)\n",
}
# Gap 3: the path and import machinery patched (each red before).
PATCHES = {
    "setattr(os.path, ...)": 'setattr(os.path, "dirname", lambda p: "data")\n',
    "setattr with a computed name": "setattr(os.path, name, f)\n",
    "os.path.__setattr__": 'os.path.__setattr__("dirname", f)\n',
    "object.__setattr__": 'import builtins\nobject.__setattr__(builtins, "__import__", f)\n',
    "os.path.exists =": "os.path.exists = f\n",
    "builtins.__import__ =": "import builtins\nbuiltins.__import__ = f\n",
    "__builtins__.__import__ =": "__builtins__.__import__ = f\n",
    "PathFinder.find_spec =": (
        "import importlib.machinery\nimportlib.machinery.PathFinder.find_spec = f\n"
    ),
    "sys.meta_path.insert": "sys.meta_path.insert(0, Finder())\n",
    "sys.meta_path =": "sys.meta_path = [Finder(), *sys.meta_path]\n",
    "sys.path_hooks.append": "sys.path_hooks.append(hook)\n",
    "sys.path_importer_cache[...] =": 'sys.path_importer_cache["data"] = importer\n',
    "sys.path_importer_cache.update": "sys.path_importer_cache.update(found)\n",
    "sys.executable =": 'sys.executable = str(ROOT / "data" / "python")\n',
    "vars(os.path)[...] =": 'vars(os.path)["join"] = f\n',
    "an alias of os.path": "p = os.path\np.exists = f\n",
    "setattr on an alias of importlib.util": (
        'import importlib.util\nu = importlib.util\nsetattr(u, "spec_from_file_location", f)\n'
    ),
}


@pytest.mark.parametrize("plant", list(CHILDREN))
def test_a_child_on_code_no_scan_read_is_sast107(plant: str) -> None:
    found = scan_source(HEAD + CHILDREN[plant], path="src/model_io.py")
    assert "SAST107" in {f.rule for f in found}, found
    assert all(f.line > 3 for f in found)


@pytest.mark.parametrize("plant", list(ENVIRONMENTS))
def test_python_variables_for_a_child_are_sast107(plant: str) -> None:
    found = scan_source(HEAD + ENVIRONMENTS[plant], path="src/model_io.py")
    assert "SAST107" in {f.rule for f in found}, found


@pytest.mark.parametrize("plant", list(PATCHES))
def test_patching_the_import_machinery_is_sast102(plant: str) -> None:
    found = scan_source(HEAD + PATCHES[plant], path="src/model_io.py")
    assert {f.rule for f in found} == {"SAST102"}, found
    assert any("patches" in f.message or "replaces" in f.message for f in found), found


# sast107b (7 December): the gaps rows 76-78 left (each PASSED, red before).
# Gap 4: a script path handed to a helper as a parameter: followed to the calls in the module;
# a call with a path no scan read, a helper passed around, named by another scanned module or
# never called here fails closed.
HELPERS = {
    "a literal python handed a parameter, then a helper": (
        "def run(command):\n    return subprocess.run(command)\n"
        'def script(p):\n    return run(["python3", p])\n'
        'script(str(ROOT / "data" / name))\n'
    ),
    "a parameter under str()": (
        'def script(p):\n    return subprocess.run(["python3", str(p)])\n'
        'script(ROOT / "data" / "evil.py")\n'
    ),
    "called with a literal file no scan reads": (
        'def script(p):\n    return subprocess.run(["python3", p])\nscript("data/evil.py")\n'
    ),
    "called by keyword": (
        'def script(p, q=None):\n    return subprocess.run(["python3", p])\n'
        'script(q=1, p="data/evil.py")\n'
    ),
    "the default used": (
        'def script(p="data/evil.py"):\n    return subprocess.run([sys.executable, p])\nscript()\n'
    ),
    "one good call, one bad": (
        'def script(p):\n    return subprocess.run(["python3", p])\n'
        'script("src/model_io.py")\nscript(path)\n'
    ),
    "never called here": 'def script(p):\n    return subprocess.run(["python3", p])\n',
    "passed around": (
        'def script(p):\n    return subprocess.run(["python3", p])\n'
        'script("src/model_io.py")\nlist(map(script, paths))\n'
    ),
    "called with *args": (
        'def script(p):\n    return subprocess.run(["python3", p])\n'
        'script("src/model_io.py")\nscript(*paths)\n'
    ),
    "a method": (
        "class Runner:\n    def script(self, p):\n"
        '        return subprocess.run(["python3", p])\n'
        '    def go(self):\n        self.script("src/model_io.py")\n'
        'Runner().script(str(ROOT / "data" / name))\n'
    ),
    "two helpers deep": (
        'def inner(p):\n    return subprocess.run(["python3", p])\n'
        "def outer(q):\n    return inner(q)\n"
        'outer("data/evil.py")\n'
    ),
    "the parameter rebound": (
        'def script(p):\n    p = "data/evil.py"\n    return subprocess.run(["python3", p])\n'
        'script("src/model_io.py")\n'
    ),
}
# Bypasses of this branch's first version (each passed it: red), found reviewing it as an attacker.
SECOND_LOOK = {
    "a decorated helper a framework calls": (
        "import click\n@click.command()\n@click.argument('p')\n"
        'def script(p):\n    return subprocess.run(["python3", p])\nscript("src/model_io.py")\n'
    ),
    "__init__ called by the class": (
        "class Runner:\n    def __init__(self, p):\n"
        '        subprocess.run(["python3", p])\n'
        '    def again(self):\n        self.__init__("src/model_io.py")\n'
        'Runner("data/evil.py")\n'
    ),
    "the helper looked up by a string": (
        'def script(p):\n    return subprocess.run(["python3", p])\n'
        'script("src/model_io.py")\nglobals()["script"]("data/evil.py")\n'
    ),
    "sh -o pipefail -c": ('subprocess.run(["bash", "-o", "pipefail", "-c", "python3 " + path])\n'),
    "PATH's old value read from a mapping the module made": (
        "import json\nd = json.loads(text)\n"
        'os.environ["PATH"] = d["PATH"]\nsubprocess.run(["python3", "src/model_io.py"])\n'
    ),
    "python spelled as a sum": (
        'exe = "pyth" + "on3"\nos.environ["PATH"] = "data"\n'
        'subprocess.run([exe, "src/model_io.py"])\n'
    ),
}
# Gap 5: a command line built by a call, or run by a shell, naming Python with a computed part.
SHELLS = {
    "shlex.split": 'import shlex\nsubprocess.run(shlex.split("python3 " + path))\n',
    "shlex.split of a name": (
        'import shlex\ncmd = f"python3 {path}"\nsubprocess.run(shlex.split(cmd))\n'
    ),
    "str.split()": 'subprocess.run(("python3 " + path).split())\n',
    "' '.join": 'subprocess.run(" ".join(["python3", path]), shell=True)\n',
    "shlex.join": 'import shlex\nos.system(shlex.join(["python3", path]))\n',
    "% formatting": 'os.popen("python3 %s" % path)\n',
    "% formatting, a tuple": 'os.system("%s %s" % ("python3", path))\n',
    ".format()": 'os.system("python3 {}".format(path))\n',
    "sh -c": 'subprocess.run(["sh", "-c", "python3 " + path])\n',
    "bash -lc an f-string": 'subprocess.run(["/bin/bash", "-lc", f"python3 {path}"])\n',
    "env sh -c": 'subprocess.run(["env", "sh", "-c", "exec python3 " + path])\n',
    "sh -c a name": 'cmd = "python3 " + path\nsubprocess.run(["sh", "-c", cmd])\n',
    "after cd &&": 'os.system("cd data && python3 evil.py")\n',
    "after ;": 'subprocess.run("true; python3 " + path, shell=True)\n',
    "after a pipe": 'subprocess.run(f"cat {src} | python3 -", shell=True)\n',
    "in $(...)": 'os.system("echo $(python3 " + path + ")")\n',
    "sh -c in a shell string": "os.system(\"sh -c 'python3 data/evil.py'\")\n",
}
# Gap 6: PATH set or prepended before a bare python starts: a python3 planted in the tree runs.
SEARCH_PATHS = {
    "env= PATH first": (
        'subprocess.run(["python3", "src/model_io.py"], env={**os.environ, '
        '"PATH": str(ROOT / "data") + os.pathsep + os.environ["PATH"]})\n'
    ),
    "env= PATH alone": 'subprocess.run(["python3", "-c", "print(1)"], env={"PATH": "data"})\n',
    "os.environ PATH prepended": (
        'os.environ["PATH"] = "data:" + os.environ["PATH"]\n'
        'subprocess.run(["python3", "src/model_io.py"])\n'
    ),
    "os.pathsep.join": (
        'os.environ["PATH"] = os.pathsep.join([str(ROOT / "bin"), os.environ.get("PATH", "")])\n'
        'subprocess.run(["python", "-c", "print(1)"])\n'
    ),
    "an f-string": (
        'os.environ["PATH"] = f"{ROOT}/bin:{os.environ[\'PATH\']}"\n'
        'subprocess.run(["python3", "-c", "print(1)"])\n'
    ),
    "os.putenv": 'os.putenv("PATH", "data")\nos.system("python3 -c pass")\n',
    "os.environ.update": (
        'os.environ.update(PATH="data")\nsubprocess.run(["python3", "src/model_io.py"])\n'
    ),
    "the working folder first (an empty entry)": (
        'env = dict(os.environ)\nenv["PATH"] = os.pathsep + env["PATH"]\n'
        'subprocess.run(["python3", "-c", "print(1)"], env=env)\n'
    ),
    "shutil.which with path=": (
        'import shutil\nsubprocess.run([shutil.which("python3", path="data"), "src/model_io.py"])\n'
    ),
}


@pytest.mark.parametrize("plant", [*HELPERS, *SECOND_LOOK, *SHELLS, *SEARCH_PATHS])
def test_helpers_shells_and_search_paths_are_sast107(plant: str) -> None:
    source = {**HELPERS, **SECOND_LOOK, **SHELLS, **SEARCH_PATHS}[plant]
    found = scan_source(HEAD + source, path="src/model_io.py")
    assert "SAST107" in {f.rule for f in found}, found
    assert all(f.line > 3 for f in found)


# What a project does and may keep doing (each passes, before and after).
ALLOWED = {
    "a scanned file by a literal path": 'subprocess.run([sys.executable, "src/model_io.py"])\n',
    "a scanned file under the file's folder": (
        'subprocess.run([sys.executable, "-I", str(Path(__file__).parent / "model_io.py")])\n'
    ),
    "a scanned file bound to a name (noxfile.py)": (
        'script = ROOT / "src" / "model_io.py"\n'
        "subprocess.run([sys.executable, '-I', str(script), str(ROOT)])\n"
    ),
    "os.path.join of the folder": (
        'subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "model_io.py")])\n'
    ),
    "-m an installed module": 'subprocess.run([sys.executable, "-m", "ruff", "-q", *args])\n',
    "-I -m a parameter given literal modules (gates/_tools.py)": (
        "def tool(module, *args):\n"
        '    command = (sys.executable, "-I", "-m", module, *args)\n    subprocess.run(command)\n'
        'tool("ruff", "check")\n'
    ),
    "-c literal code": 'subprocess.run([sys.executable, "-c", "print(1)"])\n',
    "--version": 'subprocess.run([sys.executable, "--version"])\n',
    "another program": 'subprocess.run(["git", "status", path])\n',
    "PYTHONPATH the file's folder": 'os.environ["PYTHONPATH"] = str(ROOT)\n',
    "PYTHONPATH the folder and the old value": (
        'env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}\n'
    ),
    "other variables": 'os.environ["PYTHONHASHSEED"] = "0"\nos.environ["TZ"] = "UTC"\n',
    "PYTHONPATH emptied": 'env = {**os.environ, "PYTHONPATH": ""}\n',
    "distutils' set_executable(key, value)": "compiler.set_executable('compiler', 'gcc')\n",
    "PYTHONSAFEPATH on": 'os.environ["PYTHONSAFEPATH"] = "1"\n',
    "PYTHONBREAKPOINT off": 'os.environ["PYTHONBREAKPOINT"] = "0"\n',
    "PYTHONWARNINGS of a built-in category": 'os.environ["PYTHONWARNINGS"] = "error::DeprecationWarning"\n',
    "reading the machinery": "finders = list(sys.meta_path)\nsys.path_importer_cache.clear()\n",
    "set_executable(sys.executable)": (
        "import multiprocessing\nmultiprocessing.set_executable(sys.executable)\n"
    ),
    "a tuple of names starting with python": 'LEXERS = ("python", "diff")\nEXES = ("bin/python", "python.exe")\n',
    "sys.executable alone as a default": "def spec(python=None):\n    return python or [sys.executable]\n",
    "python and the version": 'FIELDS = [("python", sys.version.replace("\\n", ""))]\n',
    "python as another program's argument": (
        'subprocess.run([uv, "python", "install", version])\n'
    ),
    "names bound to python swapped": (  # setuptools' _scripts.py
        "pattern = 'pythonw.exe'\nrepl = 'python.exe'\npattern, repl = repl, pattern\n"
    ),
    "an attribute of another os": "class Fake:\n    pass\nFake.path = 'x'\n",
    "an instance's attribute in a loader subclass": (
        "import importlib.abc\nclass L(importlib.abc.Loader):\n"
        "    def __init__(self, config):\n        self.config = config\n"
    ),
    "an attribute given sys.executable": (
        "class Env:\n    def __init__(self):\n        self.python = sys.executable\n"
    ),
    # sast107b: each passes after the change too.
    "a helper called with scanned files": (
        'def script(p):\n    return subprocess.run(["python3", "-I", p])\n'
        'script("src/model_io.py")\nscript(str(ROOT / "src" / "model_io.py"))\n'
    ),
    "a shell running another program": 'subprocess.run(["sh", "-c", "ls " + path])\n',
    "a shell running a scanned file": (
        'os.system("cd src && python3 -c pass; python3 model_io.py")\n'
    ),
    "PATH appended to": (
        'os.environ["PATH"] = os.environ["PATH"] + os.pathsep + str(ROOT / "bin")\n'
        'subprocess.run(["python3", "src/model_io.py"])\n'
    ),
    "PATH led by the interpreter's own folder": (
        'env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}\n'
        'subprocess.run(["python3", "src/model_io.py"], env=env)\n'
    ),
    "PATH led by Path(sys.executable).parent": (
        'os.environ["PATH"] = f"{Path(sys.executable).resolve().parent}:{os.environ[\'PATH\']}"\n'
        'subprocess.run(["python3", "src/model_io.py"])\n'
    ),
    "PATH set where no bare python runs": (
        'subprocess.run(["git", "status"], env={"PATH": str(ROOT / "bin")})\n'
    ),
}


@pytest.mark.parametrize("plant", list(ALLOWED))
def test_what_a_project_does_passes(plant: str) -> None:
    assert scan_source(HEAD + ALLOWED[plant], path="src/model_io.py") == []


# bandit's B404/B603 (subprocess imported and called) are silenced as any project may: only
# its deserialization and exec tests cannot be (SAST014).
# Named by a literal, the project's own code outside [sast].paths (a top-level folder no
# scanned file belongs to: data/) is code no scan read; an installed module is not (red before).
TREE = {
    "-m a module of data/": ('subprocess.run([sys.executable, "-m", "data.evil"])\n', "SAST107"),
    "-Im a module of data/": ('subprocess.run([sys.executable, "-Im", "data.evil"])\n', "SAST107"),
    "PYTHONWARNINGS naming a category in data/": (
        'os.environ["PYTHONWARNINGS"] = "error::data.evil.Warning"\n',
        "SAST107",
    ),
    "PYTHONBREAKPOINT naming data/": (
        'os.environ["PYTHONBREAKPOINT"] = "data.evil.hook"\n',
        "SAST107",
    ),
    "-m an installed module": ('subprocess.run([sys.executable, "-m", "pip", "list"])\n', None),
    "-m a scanned module": ('subprocess.run([sys.executable, "-m", "src.model_io"])\n', None),
    "PYTHONWARNINGS of an installed category": (
        'os.environ["PYTHONWARNINGS"] = "ignore::numpy.VisibleDeprecationWarning"\n',
        None,
    ),
}


@pytest.mark.parametrize("plant", list(TREE))
def test_the_projects_unscanned_code_by_name(tmp_path: Path, plant: str) -> None:
    source, rule = TREE[plant]
    (tmp_path / "src").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "evil.py").write_text(EVIL, encoding="utf-8")
    module = tmp_path / "src" / "model_io.py"
    module.write_text(HEAD + source, encoding="utf-8")
    found = scan([module], root=tmp_path, allowed=[])
    assert [f.rule for f in found] == ([rule] if rule else []), found


# Gap 7 (sast107b): the folder rule across modules. A folder imported from another scanned
# module (``from src.paths import ROOT``, as tests/ import ``REPO`` from tests/conftest.py) is
# that module's folder: a scanned file under it passes (each a finding before: red), a file no
# scan read under it, a name that is no folder there, one another module may set, or the other
# module's own folder (lib/) where this one's (src/) holds the file stay findings (guards).
PATHS = "from pathlib import Path\nROOT = Path(__file__).resolve().parent.parent\n"
ACROSS = {
    "a scanned file under an imported folder": (
        'subprocess.run([sys.executable, str(ROOT / "src" / "model_io.py")])\n',
        PATHS,
        None,
    ),
    "sys.path an imported folder": ("sys.path.insert(0, str(ROOT))\n", PATHS, None),
    "PYTHONPATH an imported folder": ('os.environ["PYTHONPATH"] = str(ROOT)\n', PATHS, None),
    "a file no scan read under an imported folder": (
        'subprocess.run([sys.executable, str(ROOT / "data" / "evil.py")])\n',
        PATHS,
        "SAST107",
    ),
    "an imported name that is no folder of its module": (
        'subprocess.run([sys.executable, str(ROOT / "evil.py")])\n',
        'from pathlib import Path\nROOT = Path("data")\n',
        "SAST107",
    ),
    "an imported folder another module may set": (
        'import src.paths\nsrc.paths.ROOT = Path("data")\n'
        'subprocess.run([sys.executable, str(ROOT / "src" / "model_io.py")])\n',
        PATHS,
        "SAST107",
    ),
    "the other module's folder, not this one's": (
        'subprocess.run([sys.executable, str(ROOT / "model_io.py")])\n',
        "from pathlib import Path\nROOT = Path(__file__).resolve().parent\n",
        "SAST107",
    ),
}


@pytest.mark.parametrize("plant", list(ACROSS))
def test_the_folder_rule_across_modules(tmp_path: Path, plant: str) -> None:
    source, paths, rule = ACROSS[plant]
    (tmp_path / "src").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "evil.py").write_text(EVIL, encoding="utf-8")
    where = "lib/paths.py" if "other module's folder" in plant else "src/paths.py"
    (tmp_path / where).write_text(paths, encoding="utf-8")
    module = tmp_path / "src" / "model_io.py"
    head = HEAD.replace("ROOT = Path(__file__).resolve().parent.parent\n", "")
    imported = "from lib.paths import ROOT\n" if "lib" in where else "from src.paths import ROOT\n"
    module.write_text(head + imported + source, encoding="utf-8")
    found = scan([module, tmp_path / where], root=tmp_path, allowed=[])
    assert {f.rule for f in found} == ({rule} if rule else set()), found


PLANT = """import subprocess  # nosec B404
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(name):
    command = [sys.executable, str(ROOT / "data" / name)]
    return subprocess.run(command, capture_output=True, text=True, check=False)  # nosec B603


if __name__ == "__main__":
    print(run("evil" + ".py").stdout)
"""
# Never scanned: a .py under data/, outside [sast].paths.
EVIL = """import pickle

print(pickle.loads(pickle.dumps({"ran": "unscanned pickle.loads"})))
"""


# sast107b: ["python3", path] handed to a helper with path a parameter (line 13), a shell's -c
# string (line 18) and a python3 planted in the tree run by PATH (line 22), each running
# data/evil.py.
PLANT_GAPS = """import os
import subprocess  # nosec B404
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(command):
    return subprocess.run(command, capture_output=True, text=True, check=False)  # nosec B603


def script(path):
    return run(["python3", path])


def shell(name):
    command = "python3 " + str(ROOT / "data" / name)
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)  # nosec B603 B607


def planted():
    env = {**os.environ, "PATH": str(ROOT / "data" / "bin") + os.pathsep + os.environ["PATH"]}
    command = ["python3", "-c", "print('a scanned one-liner')"]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # nosec B603


if __name__ == "__main__":
    print(script(str(ROOT / "data" / "evil.py")).stdout, shell("evil.py").stdout, planted().stdout)
"""
# What the plants run, each real: (module, lines the gate must name, times evil.py runs).
REAL = {
    "a computed path": (PLANT, [10], 1),
    "the gaps sast107b closed": (PLANT_GAPS, [13, 18, 22], 3),
}


def _plant(tmp_path: Path, plant: str = PLANT) -> Path:
    root = _project(tmp_path / "project", plant)
    (root / "data" / "evil.py").write_text(EVIL, encoding="utf-8")
    planted = root / "data" / "bin" / "python3"  # a pull request can commit an executable
    planted.parent.mkdir()
    planted.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I "{root / "data" / "evil.py"}"\n')
    planted.chmod(0o755)
    return root


@pytest.mark.parametrize("plant", list(REAL))
def test_the_child_really_runs_the_unscanned_file(tmp_path: Path, plant: str) -> None:
    root = _plant(tmp_path, REAL[plant][0])
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    done = subprocess.run(
        [sys.executable, "-I", str(root / "src" / "model_io.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PATH": path},  # python3 is this interpreter, as on a runner
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("unscanned pickle.loads") == REAL[plant][2], done.stdout


@pytest.mark.parametrize("plant", list(REAL))
def test_the_sast_gate_fails_a_child_on_an_unscanned_file(tmp_path: Path, plant: str) -> None:
    source, lines, _ = REAL[plant]
    done = _sast(_plant(tmp_path, source))
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    assert "SAST107" in out, out
    for line in lines:
        assert f"src/model_io.py:{line}" in out, out


PLANT_ENV = """import os
import subprocess  # nosec B404
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
env = {**os.environ, "PYTHONPATH": str(ROOT / "data")}
subprocess.run([sys.executable, "-c", "import evil"], env=env, check=False)  # nosec B603
setattr(os.path, "dirname", lambda p: str(ROOT / "data"))
"""


def test_the_sast_gate_fails_pythonpath_and_a_patched_os_path(tmp_path: Path) -> None:
    done = _sast(_plant(tmp_path, PLANT_ENV))
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    assert "SAST107 src/model_io.py:7" in out or "src/model_io.py:7" in out, out
    assert "sets PYTHONPATH" in out, out
    assert "src/model_io.py:9" in out, out
    assert "patches os.path" in out, out


# Loading a file as a module by hand was refused before this change (SAST102 at
# ``module_from_spec``, ``exec_module``, ``load_module``; SAST104 at ``runpy``): kept here as
# guards of the same gap (these were not red before).
BY_HAND = {
    "spec_from_file_location + exec_module": (
        "import importlib.util\n"
        'spec = importlib.util.spec_from_file_location("m", str(ROOT / "data" / name))\n'
        "module = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(module)\n"
    ),
    "SourceFileLoader.load_module": (
        "import importlib.machinery\n"
        'importlib.machinery.SourceFileLoader("m", path).load_module()\n'
    ),
    "runpy.run_path": "import runpy\nrunpy.run_path(path)\n",
}


@pytest.mark.parametrize("plant", list(BY_HAND))
def test_loading_a_file_by_hand_stays_refused(plant: str) -> None:
    found = scan_source(HEAD + BY_HAND[plant], path="src/model_io.py")
    assert {f.rule for f in found} & {"SAST102", "SAST104"}, found
