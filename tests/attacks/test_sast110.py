"""Two of SAST107's "Not covered" forms after sast109 (sast110, ``docs/trust-model.md`` rows
151 and 152), each a way for a pull request's author to have code of the tree (a module named by
a configuration file of the tree) run through code the sast gate passed:

1. ``COVERAGE_RCFILE`` / ``COVERAGE_PROCESS_START`` set for a child, in any mapping SAST107 reads
   for the ``PYTHON*`` variables: coverage (started by the ``.pth`` file it installs, or by
   ``coverage`` run in the child) reads that file and imports the plugins it names.
   ``COVERAGE_PROCESS_CONFIG`` holds the configuration itself (its plugins too): any value fails.
   A path is judged as a tool's configuration path is (sast109): empty, ``/dev/null``,
   ``os.devnull`` or under ``/etc/``/``/usr/`` pass.
2. The in-process calls sast109 judges (``uvicorn.run``/``Config``, ``coverage.Coverage``,
   gunicorn's applications, Celery's ``worker_main``, dask's servers) reached through
   ``functools.partial``: a keyword given at the partial's later call replaces the partial's,
   so a partial that is not called at once fails closed; ``partial(f, ...)(...)`` is read as
   the one call it is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gates.unsafe_load import UnsafeLoad
from tests.attacks.test_sast107_gaps import _scan


def _found(found: list[UnsafeLoad]) -> list[UnsafeLoad]:
    return [f for f in found if f.rule in ("SAST102", "SAST104", "SAST107")]


# 1. coverage's variables for a child, each way SAST107 reads a child's environment.
COVERAGE_ENV = {
    "env= COVERAGE_PROCESS_START": (
        'subprocess.run([sys.executable, "-c", "pass"], '
        'env={"COVERAGE_PROCESS_START": "data/cov.ini"})\n'
    ),
    "env= COVERAGE_RCFILE": (
        'subprocess.run([sys.executable, "-c", "pass"], env={"COVERAGE_RCFILE": ".coveragerc"})\n'
    ),
    "{**os.environ, COVERAGE_RCFILE}": (
        'env = {**os.environ, "COVERAGE_RCFILE": "setup.cfg"}\n'
        'subprocess.run([sys.executable, "-c", "pass"], env=env)\n'
    ),
    "os.environ[COVERAGE_PROCESS_START]": (
        'os.environ["COVERAGE_PROCESS_START"] = str(ROOT / "data" / "cov.ini")\n'
    ),
    "os.environ.update(COVERAGE_RCFILE=)": 'os.environ.update(COVERAGE_RCFILE="tox.ini")\n',
    "os.environ.setdefault": 'os.environ.setdefault("COVERAGE_PROCESS_START", "pyproject.toml")\n',
    "os.putenv": 'os.putenv("COVERAGE_PROCESS_START", "data/cov.ini")\n',
    "dict(os.environ, COVERAGE_RCFILE=)": (
        'subprocess.run(["python3", "-c", "pass"], env=dict(os.environ, COVERAGE_RCFILE="a.ini"))\n'
    ),
    "os.environ | {...}": (
        'subprocess.run([sys.executable, "-c", "pass"], '
        'env=os.environ | {"COVERAGE_PROCESS_START": "cov.ini"})\n'
    ),
    "a name bound to the path": (
        'RC = "data/cov.ini"\nos.environ["COVERAGE_PROCESS_START"] = RC\n'
    ),
    "computed at run time": (
        'os.environ["COVERAGE_RCFILE"] = os.path.join(os.getcwd(), ".coveragerc")\n'
    ),
    "from the environment": (
        'os.environ["COVERAGE_PROCESS_START"] = os.environ.get("RC", "/dev/null")\n'
    ),
    "a loop over literal names": (
        'for k in ("COVERAGE_RCFILE", "COVERAGE_PROCESS_START"):\n    os.environ[k] = "x.ini"\n'
    ),
    "an upward path under /etc/": 'os.environ["COVERAGE_RCFILE"] = "/etc/../work/tree/cov.ini"\n',
    "COVERAGE_PROCESS_CONFIG": (
        'os.environ["COVERAGE_PROCESS_CONFIG"] = \'{"run:plugins": ["data.evil"]}\'\n'
    ),
    "changed in place": 'os.environ["COVERAGE_RCFILE"] += "x"\n',
}
COVERAGE_ENV_ALLOWED = {
    "/dev/null": (
        'subprocess.run([sys.executable, "-c", "pass"], '
        'env={"COVERAGE_PROCESS_START": "/dev/null"})\n'
    ),
    "os.devnull": 'os.environ["COVERAGE_RCFILE"] = os.devnull\n',
    "empty (coverage does not start)": 'os.environ["COVERAGE_PROCESS_START"] = ""\n',
    "the system's": 'os.environ.update(COVERAGE_RCFILE="/etc/coverage/ci.ini")\n',
    "another COVERAGE_ variable": 'os.environ["COVERAGE_CORE"] = "sysmon"\n',
    "read, not set": 'rc = os.environ.get("COVERAGE_RCFILE", "")\nprint(rc)\n',
    "popped": 'os.environ.pop("COVERAGE_PROCESS_START", None)\n',
}

# 2. The in-process starters of sast109, reached through functools.partial.
PARTIALS = {
    "partial(uvicorn.run, an import string)": (
        'import functools, uvicorn\nfunctools.partial(uvicorn.run, "data.evil:app")()\n'
    ),
    "partial(uvicorn.run), the string at the call": (
        'import functools, uvicorn\nfunctools.partial(uvicorn.run, port=0)("data.evil:app")\n'
    ),
    "partial(uvicorn.run, app_dir=)(object)": (
        "import functools, uvicorn\napp = object()\n"
        'functools.partial(uvicorn.run, app_dir="data")(app)\n'
    ),
    "a named partial of uvicorn.run": (
        "from functools import partial\nimport uvicorn\nserve = partial(uvicorn.run, port=0)\n"
        'serve("data.evil:app")\n'
    ),
    "partial(uvicorn.Config)": (
        'import functools, uvicorn\nmake = functools.partial(uvicorn.Config, app="data.evil:app")\n'
    ),
    "partial(coverage.Coverage)": (
        "import functools, coverage\nfunctools.partial(coverage.Coverage, branch=True)().start()\n"
    ),
    "partial(Coverage, config_file=False), passed on": (
        "import functools, threading\nfrom coverage import Coverage\n"
        "threading.Thread(target=functools.partial(Coverage, config_file=False)).start()\n"
    ),
    "partial(Coverage, config_file=False) overridden at the call": (
        "import functools\nfrom coverage import Coverage\n"
        'functools.partial(Coverage, config_file=False)(config_file="setup.cfg").start()\n'
    ),
    "partial(gunicorn WSGIApplication)": (
        "import functools\nfrom gunicorn.app.wsgiapp import WSGIApplication\n"
        "functools.partial(WSGIApplication)().run()\n"
    ),
    "partial(app.worker_main)": (
        'import functools\nfrom celery import Celery\napp = Celery("t")\n'
        'functools.partial(app.worker_main, argv=["worker"])()\n'
    ),
    "partial(Celery.worker_main, app)": (
        'import functools\nfrom celery import Celery\napp = Celery("t")\n'
        "functools.partial(Celery.worker_main, app)()\n"
    ),
    "partial(distributed.Worker, preload=)": (
        'import functools, distributed\nfunctools.partial(distributed.Worker, preload=["data.evil"])\n'
    ),
    "functools.partialmethod": (
        "import functools, uvicorn\n\nclass S:\n    serve = functools.partialmethod(uvicorn.run)\n"
    ),
    "a partial of a partial, called at once": (
        "import functools, uvicorn\n"
        'functools.partial(functools.partial(uvicorn.run, "data.evil:app"), port=0)()\n'
    ),
    "a partial of a named partial": (
        "import functools, uvicorn\nserve = functools.partial(uvicorn.run, port=0)\n"
        'functools.partial(serve, "data.evil:app")()\n'
    ),
    "partial(pytest.main, [...])() at once": (
        'import functools, pytest\nfunctools.partial(pytest.main, ["data"])()\n'
    ),
    "a named partial of pytest.main": (
        'import functools, pytest\nrun = functools.partial(pytest.main, ["-q"])\nrun()\n'
    ),
    "partial(uvicorn's main)": (
        'import functools\nfrom uvicorn.main import main\nfunctools.partial(main, ["data.evil:app"])()\n'
    ),
    "operator.methodcaller(worker_main)": (
        'import operator\nfrom celery import Celery\napp = Celery("t")\n'
        'operator.methodcaller("worker_main", ["worker"])(app)\n'
    ),
    "types.MethodType(uvicorn.run, a string)": (
        'import types, uvicorn\ntypes.MethodType(uvicorn.run, "data.evil:app")()\n'
    ),
    "uvicorn.run.__get__(a string)": (
        'import uvicorn\nuvicorn.run.__get__("data.evil:app")(port=0)\n'
    ),
    "partial under another name": (
        "import functools, uvicorn\nP = functools.partial\nrun = uvicorn.run\n"
        'P(run, "data.evil:app")()\n'
    ),
}
PARTIALS_ALLOWED = {
    "partial(uvicorn.run, an object)(...) at once": (
        "import functools, uvicorn\n\nasync def app(scope, receive, send):\n    pass\n\n"
        'functools.partial(uvicorn.run, app)(host="127.0.0.1", port=0)\n'
    ),
    "partial(Coverage, config_file=False)() at once": (
        "import functools, coverage\n"
        "functools.partial(coverage.Coverage, config_file=False)(branch=True).start()\n"
    ),
    "partial(uvicorn.run, a scanned module's app)()": (
        'import functools, uvicorn\nfunctools.partial(uvicorn.run, "src.model_io:app")(port=0)\n'
    ),
    "partial(unittest.main)() at once: the module's own tests": (
        "import functools, unittest\nfunctools.partial(unittest.main, verbosity=2)()\n"
    ),
    "types.MethodType of another function": (
        "import types\n\ndef greet(self):\n    return self\n\ntypes.MethodType(greet, 1)()\n"
    ),
    "partial(os.getcwd)": "import functools\nfunctools.partial(os.getcwd)\n",
    "partial of another run": (
        'import functools\nfunctools.partial(subprocess.run, check=True)(["ls"])\n'
    ),
}

PLANTED = {"coverage env": COVERAGE_ENV, "partials": PARTIALS}
ALLOWED = {"coverage env": COVERAGE_ENV_ALLOWED, "partials": PARTIALS_ALLOWED}


@pytest.mark.parametrize(("table", "plant"), [(t, p) for t in PLANTED for p in PLANTED[t]])
def test_each_form_is_a_finding(tmp_path: Path, table: str, plant: str) -> None:
    found = _found(_scan(tmp_path, PLANTED[table][plant]))
    assert found, plant
    assert all(f.path == "src/model_io.py" and f.line > 0 for f in found), found
    rule = {"partials": "SAST104"}.get(table, "SAST107")
    assert {f.rule for f in found} == {rule}, found


@pytest.mark.parametrize(("table", "plant"), [(t, p) for t in ALLOWED for p in ALLOWED[t]])
def test_each_control_stays_clean(tmp_path: Path, table: str, plant: str) -> None:
    assert _found(_scan(tmp_path, ALLOWED[table][plant])) == []


def test_the_finding_names_the_variable_and_the_file(tmp_path: Path) -> None:
    found = _found(_scan(tmp_path, 'os.environ["COVERAGE_PROCESS_START"] = "data/cov.ini"\n'))
    assert len(found) == 1
    assert found[0].rule == "SAST107"
    assert "COVERAGE_PROCESS_START" in found[0].message
    assert "data/cov.ini" in found[0].message


def test_the_partial_finding_says_why(tmp_path: Path) -> None:
    found = _found(
        _scan(tmp_path, "import functools, coverage\nfunctools.partial(coverage.Coverage)\n")
    )
    assert len(found) == 1
    assert "partial" in found[0].message
    assert "coverage.Coverage" in found[0].message


def test_coverage_really_reads_the_file_the_variable_names(tmp_path: Path) -> None:
    """The real coverage: ``COVERAGE_RCFILE`` naming a file of the tree makes ``coverage erase``
    import the plugin that file names (the marker is written by the plugin module); and with
    ``COVERAGE_PROCESS_START`` the ``.pth`` coverage installs reads the file at the child's start
    and tries to import its plugin (the working folder is not yet on ``sys.path`` then, so the
    import of a module there fails: the message names it)."""
    pytest.importorskip("coverage")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cov.ini").write_text("[run]\nplugins = evilplug\n", encoding="utf-8")
    (tmp_path / "evilplug.py").write_text(
        'import pathlib\npathlib.Path("RAN").write_text("x")\n'
        "def coverage_init(reg, options):\n    pass\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "PYTHON"))}
    erase = [sys.executable, "-m", "coverage", "erase"]
    subprocess.run(
        erase, cwd=tmp_path, env={**env, "COVERAGE_RCFILE": "data/cov.ini"}, check=True, timeout=60
    )
    assert (tmp_path / "RAN").is_file()
    (tmp_path / "RAN").unlink()
    subprocess.run(
        erase, cwd=tmp_path, env={**env, "COVERAGE_RCFILE": "/dev/null"}, check=True, timeout=60
    )
    assert not (tmp_path / "RAN").exists()  # the control: /dev/null names no plugin
    pth = any(
        p.name.endswith("coverage.pth") for p in Path(sys.prefix).glob("lib/*/site-packages/*")
    )
    if pth:
        started = subprocess.run(
            [sys.executable, "-c", "pass"],
            check=False,
            cwd=tmp_path,
            env={**env, "COVERAGE_PROCESS_START": "data/cov.ini"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "evilplug" in started.stderr


def test_a_partial_of_uvicorn_config_really_imports_the_tree(tmp_path: Path) -> None:
    """The real uvicorn: a partial of ``Config`` given the import string later, then
    ``load()``, imports ``data/evil.py`` (its marker written); the same source is a finding."""
    pytest.importorskip("uvicorn")
    source = (
        "import functools, uvicorn\n"
        "make = functools.partial(uvicorn.Config, port=0)\n"
        'make("data.evil:app").load()\n'
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "data" / "evil.py").write_text(
        'import pathlib\npathlib.Path("RAN").write_text("x")\n\n'
        "async def app(scope, receive, send):\n    pass\n",
        encoding="utf-8",
    )
    (tmp_path / "run.py").write_text(source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "PYTHON"))}
    subprocess.run(
        [sys.executable, "run.py"],
        cwd=tmp_path,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
    )
    assert (tmp_path / "RAN").is_file()
    found = _found(_scan(tmp_path / "scan", source))
    assert [f.rule for f in found] == ["SAST104"]


def test_a_working_folder_moved_by_types_method_type(tmp_path: Path) -> None:
    """``types.MethodType(os.chdir, "data")()`` moves the working folder as
    ``functools.partial(os.chdir, "data")`` does (sast108): a later ``-m evil`` runs
    ``data/evil.py``. Found while closing row 152; red before (no finding)."""
    source = (
        'import types\ntypes.MethodType(os.chdir, "data")()\n'
        'subprocess.run([sys.executable, "-m", "evil"])\n'
    )
    found = _found(_scan(tmp_path, source))
    assert [f.rule for f in found] == ["SAST107"], found
    control = source.replace('"data"', '"src"')  # a folder of scanned code: -m evil is not there
    assert _found(_scan(tmp_path / "control", control)) == []
