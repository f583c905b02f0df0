"""SAST107's forms sast107d left open (sast108, ``docs/trust-model.md`` rows 127-131): each a way
for a pull request's author to run ``data/evil.py`` (or ``data/``'s code) through code the sast
gate passed. One table per form, with the controls that must stay clean:

1. servers and workers that import the application their command line names (``uvicorn
   data.evil:app``, ``gunicorn``, ``flask``, ``celery``, ``streamlit run`` ...) and ``python -m
   http.server --cgi``: ``_TREE_RUNNERS``, the table in ``docs/supply-chain.md``;
2. tools that import plugins named in the tree's configuration (mypy, coverage, pylint, flake8),
   checked with the real mypy and coverage;
3. a ``*argv`` helper of one module given a command line by another module;
4. ``os.chdir`` reached through ``functools.partial`` or ``operator.methodcaller``;
5. the same tools run in this process (``pytest.main``, ``unittest.main(module=...)``, pip's
   ``main``, ``mypy.api.run``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gates import unsafe_load
from gates.unsafe_load import UnsafeLoad
from tests.attacks.test_redteam10_unsafe_loaders import _sast
from tests.attacks.test_sast107_gaps import _scan
from tests.attacks.test_sast_child_code import EVIL
from tests.hostile_support import scanned_project

REPO = Path(__file__).resolve().parents[2]


def _found(found: list[UnsafeLoad]) -> list[UnsafeLoad]:
    return [f for f in found if f.rule in ("SAST104", "SAST107")]


# 1. Servers and workers that import the application named on their command line (each puts the
#    working folder first on sys.path), as -m modules and as their own programs; http.server runs
#    code only with --cgi.
SERVERS = {
    "-m uvicorn": 'subprocess.run([sys.executable, "-m", "uvicorn", "data.evil:app"])\n',
    "the uvicorn program": 'subprocess.run(["uvicorn", "--app-dir", "data", "evil:app"])\n',
    "-m gunicorn": 'subprocess.run([sys.executable, "-m", "gunicorn", "data.evil:app"])\n',
    "the gunicorn program": 'subprocess.run(["gunicorn", "-w", "2", "data.evil:app"])\n',
    "-m hypercorn": 'subprocess.run([sys.executable, "-m", "hypercorn", "data.evil:app"])\n',
    "the daphne program": 'subprocess.run(["daphne", "data.evil:app"])\n',
    "waitress-serve": 'subprocess.run(["waitress-serve", "data.evil:app"])\n',
    "fastapi run": 'subprocess.run(["fastapi", "run", "data/evil.py"])\n',
    "flask --app run": 'subprocess.run(["flask", "--app", "data.evil", "run"])\n',
    "-m flask run (the working folder's app.py)": (
        'subprocess.run([sys.executable, "-m", "flask", "run"], cwd="data")\n'
    ),
    "celery -A worker": 'subprocess.run(["celery", "-A", "data.evil", "worker"])\n',
    "streamlit run": 'subprocess.run(["streamlit", "run", "data/evil.py"])\n',
    "-m streamlit run": 'subprocess.run([sys.executable, "-m", "streamlit", "run", "x.py"])\n',
    "django-admin": 'subprocess.run(["django-admin", "check", "--settings", "data.evil"])\n',
    "-m django": 'subprocess.run([sys.executable, "-m", "django", "runserver"])\n',
    "locust": 'subprocess.run(["locust", "-f", "data/evil.py", "--headless"])\n',
    "alembic upgrade": 'subprocess.run(["alembic", "upgrade", "head"])\n',
    "pre-commit run": 'subprocess.run(["pre-commit", "run", "--all-files"])\n',
    "-m pre_commit": 'subprocess.run([sys.executable, "-I", "-m", "pre_commit", "run"])\n',
    "uvicorn in a shell string": 'subprocess.run("cd data && uvicorn evil:app", shell=True)\n',
    "-m runpy uvicorn": 'subprocess.run([sys.executable, "-m", "runpy", "uvicorn", "evil:app"])\n',
    "-m http.server --cgi": 'subprocess.run([sys.executable, "-m", "http.server", "--cgi"])\n',
    "-m http.server with a computed word": (
        'def serve(flag):\n    subprocess.run([sys.executable, "-m", "http.server", flag])\n'
    ),
}
SERVERS_ALLOWED = {
    "-m http.server": 'subprocess.run([sys.executable, "-m", "http.server", "8000"])\n',
    "-m http.server -d a folder": (
        'subprocess.run([sys.executable, "-m", "http.server", "-d", "site", "-b", "::1"])\n'
    ),
    "git grep uvicorn (an argument)": 'subprocess.run(["git", "grep", "uvicorn"])\n',
    "an echo of the word flask": 'subprocess.run(["echo", "flask", "run"])\n',
}

# 2. Tools that import the plugins their configuration names, found in the working folder (or
#    above): the pull request writes that file. Naming no file turns it off.
CONFIG_TOOLS = {
    "-m mypy": 'subprocess.run([sys.executable, "-I", "-m", "mypy", "src"])\n',
    "the mypy program": 'subprocess.run(["mypy", "--strict", "src"])\n',
    "mypy --config-file in the tree": (
        'subprocess.run([sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "src"])\n'
    ),
    "-m coverage report": 'subprocess.run([sys.executable, "-m", "coverage", "report"])\n',
    "-m coverage erase": 'subprocess.run([sys.executable, "-m", "coverage", "erase"])\n',
    "-m coverage in a shell string": 'subprocess.run("python3 -m coverage html", shell=True)\n',
    "coverage run a scanned file": (
        'subprocess.run([sys.executable, "-m", "coverage", "run", "src/model_io.py"])\n'
    ),
    "coverage run --rcfile=/dev/null an unscanned file": (
        'subprocess.run([sys.executable, "-m", "coverage", "run", "--rcfile=/dev/null", '
        '"data/evil.py"])\n'
    ),
    "-m pylint": 'subprocess.run([sys.executable, "-m", "pylint", "src"])\n',
    "the flake8 program": 'subprocess.run(["flake8", "src"])\n',
    "-m mypy, the switch computed": (
        'def check(option):\n    subprocess.run([sys.executable, "-m", "mypy", option, "src"])\n'
    ),
}
CONFIG_TOOLS_ALLOWED = {
    "mypy --config-file=": 'subprocess.run([sys.executable, "-m", "mypy", "--config-file=", "src"])\n',
    "mypy --config-file /dev/null": (
        'subprocess.run(["mypy", "--config-file", "/dev/null", "src"])\n'
    ),
    "coverage report --rcfile=/dev/null": (
        'subprocess.run([sys.executable, "-m", "coverage", "report", "--rcfile=/dev/null"])\n'
    ),
    "coverage run --rcfile= a scanned file": (
        'subprocess.run([sys.executable, "-m", "coverage", "run", "--rcfile=", "src/model_io.py"])\n'
    ),
    # coverage imports its plugins by module name: only with the working folder on sys.path
    # (run and the reports put it there themselves: sast111, tests/attacks/test_sast111.py)
    "-I -m coverage erase": 'subprocess.run([sys.executable, "-I", "-m", "coverage", "erase"])\n',
    "-P -m coverage combine": 'subprocess.run([sys.executable, "-P", "-m", "coverage", "combine"])\n',
    "the coverage program, erase": 'subprocess.run(["coverage", "erase"])\n',
    "flake8 --isolated": 'subprocess.run([sys.executable, "-m", "flake8", "--isolated", "src"])\n',
    "-I -m ruff (no Python plugins)": (
        'subprocess.run([sys.executable, "-I", "-m", "ruff", "check", "src"])\n'
    ),
    "-I -m bandit (plugins from entry points only)": (
        'subprocess.run([sys.executable, "-I", "-m", "bandit", "-r", "src"])\n'
    ),
    "-m black": 'subprocess.run([sys.executable, "-m", "black", "--check", "src"])\n',
}


# 3. A *argv helper in src/model_io.py, given its command line by src/caller.py.
HELPER = "def run_all(*argv):\n    return subprocess.run(argv)\n"
HELPER_IN = "def run_in(folder, *argv):\n    return subprocess.run(list(argv), cwd=folder)\n"
VARARGS = {
    "from m import helper": (
        HELPER,
        'from src.model_io import run_all\nrun_all("python3", "data/evil.py")\n',
    ),
    "m.helper(...)": (
        HELPER,
        'import sys\nfrom src import model_io\nmodel_io.run_all(sys.executable, "-m", "pytest")\n',
    ),
    "a fixed parameter first": (
        HELPER_IN,
        'import sys\nfrom src.model_io import run_in\nrun_in("src", sys.executable, "data/evil.py")\n',
    ),
    "a list given as *words": (
        HELPER,
        'from src.model_io import run_all\nWORDS = ["uvicorn", "data.evil:app"]\nrun_all(*WORDS)\n',
    ),
    "in a function of the caller": (
        HELPER,
        "import sys\nfrom src.model_io import run_all\n\n"
        'def go():\n    return run_all(sys.executable, "-m", "pip", "install", ".")\n',
    ),
}
VARARGS_ALLOWED = {
    "a scanned script": (
        HELPER,
        'from src.model_io import run_all\nrun_all("python3", "src/model_io.py")\n',
    ),
    "ruff": (
        HELPER,
        'import sys\nfrom src.model_io import run_all\nrun_all(sys.executable, "-I", "-m", "ruff", "check")\n',
    ),
    "another module's own run_all": (
        HELPER,
        'import other\nother.run_all("python3", "data/evil.py")\n',
    ),
    "not a command line (git)": (
        HELPER,
        'from src.model_io import run_all\nrun_all("git", "status")\n',
    ),
}

# 4. The working folder moved by a chdir made ready to call.
CHDIR = {
    "functools.partial(os.chdir, folder)()": (
        'import functools\ngo = functools.partial(os.chdir, "data")\ngo()\n'
        'subprocess.run([sys.executable, "-m", "evil"])\n'
    ),
    "partial(chdir) given the folder later": (
        "from functools import partial\nfrom os import chdir\nmove = partial(chdir)\n"
        'move("data")\nsubprocess.run([sys.executable, "-c", "import evil"])\n'
    ),
    "partial(contextlib.chdir, folder)": (
        'import functools\nwith functools.partial(contextlib.chdir, "data")():\n'
        '    subprocess.run([sys.executable, "-m", "evil"])\n'
    ),
    "operator.methodcaller('chdir', folder)(os)": (
        'import operator\noperator.methodcaller("chdir", "data")(os)\n'
        'subprocess.run([sys.executable, "-m", "evil"])\n'
    ),
    "partial in another function, the child elsewhere": (
        'import functools\n\ndef setup():\n    return functools.partial(os.chdir, ROOT / "data")\n\n'
        'def later():\n    subprocess.run([sys.executable, "-m", "evil"])\n'
    ),
}
CHDIR_ALLOWED = {
    "partial(os.chdir, ROOT)": (
        "import functools\nfunctools.partial(os.chdir, ROOT)()\n"
        'subprocess.run([sys.executable, "-m", "evil"])\n'
    ),
    "partial of another function": (
        'import functools\nfunctools.partial(print, "data")()\n'
        'subprocess.run([sys.executable, "-m", "evil"])\n'
    ),
    "methodcaller of another method": (
        'import operator\noperator.methodcaller("strip", "data")("x")\n'
        'subprocess.run([sys.executable, "-m", "evil"])\n'
    ),
    "partial(os.chdir, data) with -I -m": (
        'import functools\nfunctools.partial(os.chdir, "data")()\n'
        'subprocess.run([sys.executable, "-I", "-m", "json.tool", "x.json"])\n'
    ),
}

# 5. The same tools run in this process.
IN_PROCESS = {
    "pytest.main(list)": 'import pytest\npytest.main(["-q", "src"])\n',
    "pytest.main()": "import pytest\npytest.main()\n",
    "from pytest import main": 'from pytest import main\nmain(args=["data"])\n',
    "unittest.main(module=...)": 'import unittest\nunittest.main(module="data.evil")\n',
    "unittest.main(argv=discover)": (
        'import unittest\nunittest.main(argv=["x", "discover", "-s", "data"])\n'
    ),
    "unittest.main(module=None)": "import unittest\nunittest.main(module=None)\n",
    "unittest.main(argv=a parameter)": (
        "import unittest\n\ndef go(argv):\n    unittest.main(module=None, argv=argv)\n"
    ),
    "unittest.TestProgram(module=...)": 'import unittest\nunittest.TestProgram("data.evil")\n',
    "pip's main install": 'from pip._internal.cli.main import main\nmain(["install", "."])\n',
    "pip's main, computed": (
        "from pip._internal.cli.main import main\n\ndef go(words):\n    main(words)\n"
    ),
    "coverage.cmdline.main report": 'import coverage.cmdline\ncoverage.cmdline.main(["report"])\n',
    "mypy.api.run": 'from mypy import api\napi.run(["src"])\n',
}
IN_PROCESS_ALLOWED = {
    "unittest.main() under __main__": (
        'import unittest\nif __name__ == "__main__":\n    unittest.main()\n'
    ),
    "unittest.main(verbosity=2)": "import unittest\nunittest.main(verbosity=2, exit=False)\n",
    "unittest.main(argv=[x, a scanned module])": (
        'import unittest\nunittest.main(argv=["x", "src.model_io"])\n'
    ),
    "pip's main list": 'from pip._internal.cli.main import main\nmain(["list"])\n',
    "mypy.api.run --config-file=": 'from mypy import api\napi.run(["--config-file=", "src"])\n',
    "another main": "import json.tool\njson.tool.main()\n",
    "coverage's main() (the process's command line)": (
        "import sys\nfrom coverage.cmdline import main\nsys.exit(main())\n"
    ),
}


PLANTED = {"servers": SERVERS, "config": CONFIG_TOOLS, "chdir": CHDIR, "in process": IN_PROCESS}
ALLOWED = {
    "servers": SERVERS_ALLOWED,
    "config": CONFIG_TOOLS_ALLOWED,
    "chdir": CHDIR_ALLOWED,
    "in process": IN_PROCESS_ALLOWED,
}


@pytest.mark.parametrize(("table", "plant"), [(t, p) for t in PLANTED for p in PLANTED[t]])
def test_each_form_is_a_finding(tmp_path: Path, table: str, plant: str) -> None:
    found = _found(_scan(tmp_path, PLANTED[table][plant]))
    assert found, plant
    assert all(f.path == "src/model_io.py" and f.line > 0 for f in found), found
    rule = "SAST104" if table == "in process" else "SAST107"
    assert {f.rule for f in found} == {rule}, found


@pytest.mark.parametrize(("table", "plant"), [(t, p) for t in ALLOWED for p in ALLOWED[t]])
def test_each_control_stays_clean(tmp_path: Path, table: str, plant: str) -> None:
    assert _found(_scan(tmp_path, ALLOWED[table][plant])) == []


@pytest.mark.parametrize("plant", list(VARARGS))
def test_a_vararg_helper_given_a_line_by_another_module(tmp_path: Path, plant: str) -> None:
    helper, caller = VARARGS[plant]
    found = _found(_scan(tmp_path, helper, caller))
    assert [f.rule for f in found] == ["SAST107"], found
    assert found[0].path == "src/model_io.py"
    assert "src/caller.py:" in found[0].message, found[0].message


@pytest.mark.parametrize("plant", list(VARARGS_ALLOWED))
def test_a_vararg_helper_given_nothing_unscanned(tmp_path: Path, plant: str) -> None:
    helper, caller = VARARGS_ALLOWED[plant]
    assert _found(_scan(tmp_path, helper, caller)) == []


def test_the_messages_name_what_runs(tmp_path: Path) -> None:
    [server] = _found(_scan(tmp_path / "a", SERVERS["-m uvicorn"]))
    assert "python -m uvicorn" in server.message
    assert "application named module:attr" in server.message
    [mypy] = _found(_scan(tmp_path / "b", CONFIG_TOOLS["-m mypy"]))
    assert "plugins of mypy.ini" in mypy.message
    assert "--config-file=/dev/null" in mypy.message
    [chdir] = _found(_scan(tmp_path / "c", CHDIR["functools.partial(os.chdir, folder)()"]))
    assert chdir.message.startswith("after functools.partial(...) at src/model_io.py:5")
    [pytest_main] = _found(_scan(tmp_path / "d", IN_PROCESS["pytest.main(list)"]))
    assert pytest_main.message.startswith("calls pytest.main() in this process")
    [given] = _found(_scan(tmp_path / "e", IN_PROCESS["unittest.main(argv=a parameter)"]))
    assert "with argv, computed at run time" in given.message, given.message


# The runners' table in the docs: every name the rule knows is listed, with how to add one.
DOC = REPO / "docs" / "supply-chain.md"


def test_every_runner_is_in_the_docs_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("### SAST107's runners")
    table = text[start : text.index("The script runners", start)]
    listed = set(re.findall(r"^\| `([^`]+)` \|", table, flags=re.MULTILINE))
    known = (
        set(unsafe_load._TREE_RUNNERS)
        | set(unsafe_load._CONFIG_RUNNERS)
        | set(unsafe_load._IN_PROCESS)
        | {"http.server"}
        # sast109: dask's --preload, the in-process servers, workers and coverage's API
        | set(unsafe_load._PRELOAD_RUNNERS)
        | unsafe_load._APP_STRINGS
        | unsafe_load._GUNICORN_APPS
        | {unsafe_load._GUNICORN_BASE}
        | unsafe_load._CELERY_WORKERS
        | unsafe_load._COVERAGE_API
        | unsafe_load._DASK_SERVERS
    )
    assert known - listed == set(), "not in the docs table"
    assert listed - known - set(unsafe_load._SCRIPT_RUNNERS) - {"pip"} == set(), "not a runner"
    assert "How a runner is added" in table


# The premise of table 2, with the real tools: a plugin named by the tree's configuration runs,
# under -I too, and the switches the controls use stop it.
MARK = "RAN"
PLUGIN = 'import pathlib\npathlib.Path("{mark}").write_text("ran")\n'


def _tool(root: Path, *args: str, python: bool = True) -> bool:
    (root / MARK).unlink(missing_ok=True)
    subprocess.run(  # this interpreter, fixed arguments
        [sys.executable, *args] if python else list(args),
        cwd=root,
        capture_output=True,
        timeout=300,
        check=False,
        env={"PATH": os.environ["PATH"], "HOME": str(root)},
    )
    return (root / MARK).exists()


def test_real_coverage_imports_the_trees_plugin(tmp_path: Path) -> None:
    (tmp_path / "covplug.py").write_text(
        PLUGIN.format(mark=MARK) + "def coverage_init(reg, options):\n    pass\n"
    )
    (tmp_path / ".coveragerc").write_text("[run]\nplugins = covplug\n")
    assert _tool(tmp_path, "-m", "coverage", "erase")
    assert _tool(tmp_path, "-m", "coverage", "report")
    assert not _tool(tmp_path, "-m", "coverage", "report", "--rcfile=/dev/null")
    assert not _tool(tmp_path, "-I", "-m", "coverage", "erase")  # the controls' premise
    program = Path(sys.executable).with_name("coverage")
    assert not _tool(tmp_path, str(program), "erase", python=False)


@pytest.mark.slow
def test_real_mypy_imports_the_trees_plugin(tmp_path: Path) -> None:
    (tmp_path / "evilplug.py").write_text(
        PLUGIN.format(mark=MARK) + "from mypy.plugin import Plugin\n\n"
        "def plugin(version):\n    return Plugin\n"
    )
    (tmp_path / "pyproject.toml").write_text('[tool.mypy]\nplugins = ["evilplug.py"]\n')
    (tmp_path / "a.py").write_text("x: int = 1\n")
    assert _tool(tmp_path, "-I", "-m", "mypy", "--no-incremental", "a.py")
    assert not _tool(tmp_path, "-I", "-m", "mypy", "--no-incremental", "--config-file=", "a.py")


# Rows 127-131 in one real plant: each of its four runs executes data/ code (a coverage plugin
# named by the tree's .coveragerc, pytest.main on data/, a *argv helper given data/evil.py by
# another module, -m evil after a partial chdir), and the real sast gate names each line.
PLANT = """import functools
import os
import subprocess  # nosec B404
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_all(*argv):
    return subprocess.run(argv, capture_output=True, text=True, check=False)  # nosec B603 SAST107


def report():
    command = [sys.executable, "-m", "coverage", "erase"]
    return subprocess.run(command, capture_output=True, text=True, check=False)  # nosec B603 SAST107


def tests():
    return pytest.main(["-q", "-s", "-p", "no:cacheprovider", "data/test_evil.py"])  # SAST104


def moved():
    functools.partial(os.chdir, ROOT / "data")()
    command = [sys.executable, "-m", "evil"]
    return subprocess.run(command, capture_output=True, text=True, check=False)  # nosec B603 SAST107
"""
CALLER = """import sys

from model_io import moved, report, run_all, tests

print(report().stdout, run_all(sys.executable, "data/evil.py").stdout)
tests()
print(moved().stdout)
"""


def _planted(tmp_path: Path) -> Path:
    root = scanned_project(tmp_path / "project")
    (root / "src" / "model_io.py").write_text(PLANT, encoding="utf-8")
    (root / "src" / "caller.py").write_text(CALLER, encoding="utf-8")
    (root / "data" / "evil.py").write_text(EVIL, encoding="utf-8")
    (root / "data" / "test_evil.py").write_text(EVIL, encoding="utf-8")
    (root / "data" / "covplug.py").write_text(
        EVIL + "\n\ndef coverage_init(reg, options):\n    pass\n", encoding="utf-8"
    )
    (root / ".coveragerc").write_text("[run]\nplugins = data.covplug\n", encoding="utf-8")
    return root


def test_each_form_really_runs_the_unscanned_code(tmp_path: Path) -> None:
    root = _planted(tmp_path)
    done = subprocess.run(  # this interpreter on the planted script
        [sys.executable, str(root / "src" / "caller.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("unscanned pickle.loads") == 4, done.stdout


def test_the_sast_gate_fails_each_form(tmp_path: Path) -> None:
    done = _sast(_planted(tmp_path))
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    lines = [
        (n, text.rsplit(" ", 1)[1])
        for n, text in enumerate(PLANT.splitlines(), 1)
        if text.endswith(("SAST107", "SAST104"))
    ]
    assert len(lines) == 4
    for line, rule in lines:
        assert f"{rule} src/model_io.py:{line}" in out, out
