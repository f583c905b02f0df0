"""SAST107's remaining ways to run a pull request's code through a tool (sast111,
``docs/trust-model.md`` rows 159-161), each a way for the author of a pull request to have code
of the tree run through code the sast gate passed:

1. dask's preload (and the other settings that import code) given through dask's configuration
   rather than the command line: ``DASK_DISTRIBUTED__WORKER__PRELOAD`` (scheduler, nanny and
   client forms) in a child's environment or ``os.environ``, ``dask.config.set(...)``, and
   ``DASK_CONFIG``/``DASK_ROOT_CONFIG`` naming a YAML file of the tree (SAST107 for a child's
   environment, SAST104 for ``dask.config.set`` in this process);
2. ``operator.methodcaller("run"/"main", ...)`` applied to uvicorn, pytest and the other
   in-process starters: judged as the call it makes when the receiver is known, failing closed
   when it is not (SAST104);
3. ``coverage run`` from the ``coverage`` program or under ``-I``/``-P``: the working folder's
   configuration still names the program ``run`` runs with no script (``[run] command_line``)
   and, with ``-m``, the plugins imported with the working folder first on ``sys.path``.
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


def _clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COVERAGE_", "PYTHON", "DASK_", "GATES_"))
    }


# 1. dask's configuration: a child's environment (SAST107) and dask.config.set (SAST104).
DASK_ENV = {
    "env= DASK_DISTRIBUTED__WORKER__PRELOAD": (
        'subprocess.run([sys.executable, "-c", "pass"], '
        'env={"DASK_DISTRIBUTED__WORKER__PRELOAD": "data.evil"})\n'
    ),
    "{**os.environ, scheduler preload as a list literal}": (
        'env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__PRELOAD": "[\'data.evil\']"}\n'
        'subprocess.run(["dask", "scheduler"], env=env)\n'
    ),
    "os.environ nanny preload, a file": (
        'os.environ["DASK_DISTRIBUTED__NANNY__PRELOAD"] = "data/evil.py"\n'
    ),
    "client preload through os.environ.update": (
        'os.environ.update(DASK_DISTRIBUTED__CLIENT__PRELOAD="data.evil")\n'
    ),
    "a mapping above the key": (
        "os.environ[\"DASK_DISTRIBUTED__WORKER\"] = \"{'preload': ['data.evil']}\"\n"
    ),
    "preload computed at run time": (
        'os.environ["DASK_DISTRIBUTED__WORKER__PRELOAD"] = os.environ.get("X", "")\n'
    ),
    "preload the text of a script": (
        'os.environ["DASK_DISTRIBUTED__WORKER__PRELOAD"] = "import evil\\nprint(1)"\n'
    ),
    "the scheduler's http routes": (
        'os.environ["DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES"] = "[\'data.evil\']"\n'
    ),
    "DASK_CONFIG a folder of the tree": 'os.environ["DASK_CONFIG"] = "data/dask"\n',
    "DASK_CONFIG by putenv": 'os.putenv("DASK_CONFIG", str(ROOT / "data" / "dask.yaml"))\n',
    "DASK_ROOT_CONFIG": (
        'subprocess.run(["dask", "worker", "tcp://127.0.0.1:8786"], '
        'env={"DASK_ROOT_CONFIG": "conf"})\n'
    ),
    "DASK_INTERNAL_INHERIT_CONFIG": 'os.environ["DASK_INTERNAL_INHERIT_CONFIG"] = "e30="\n',
}
DASK_ENV_ALLOWED = {
    "another dask setting": 'os.environ["DASK_DISTRIBUTED__WORKER__DAEMON"] = "False"\n',
    "an empty preload": 'os.environ["DASK_DISTRIBUTED__WORKER__PRELOAD"] = "[]"\n',
    "the preload's argv": ('os.environ["DASK_DISTRIBUTED__WORKER__PRELOAD_ARGV"] = "[\'--x\']"\n'),
    "a preload of a scanned module": (
        'os.environ["DASK_DISTRIBUTED__WORKER__PRELOAD"] = "src.model_io"\n'
    ),
    "DASK_CONFIG the machine's": 'os.environ["DASK_CONFIG"] = "/etc/dask"\n',
    "read, not set": 'print(os.environ.get("DASK_CONFIG", ""))\n',
}
DASK_SETS = {
    "dask.config.set({dotted key: [...]})": (
        'import dask\ndask.config.set({"distributed.worker.preload": ["data.evil"]})\n'
    ),
    "dask.config.set(distributed__scheduler__preload=)": (
        'import dask\ndask.config.set(distributed__scheduler__preload=["data/evil.py"])\n'
    ),
    "a nested mapping": (
        'import dask\ndask.config.set({"distributed": {"worker": {"preload": ["data.evil"]}}})\n'
    ),
    "a name bound to the mapping": (
        'import dask\nCFG = {"distributed.nanny.preload": "data.evil"}\ndask.config.set(CFG)\n'
    ),
    "a mapping computed at run time": "import dask\n\ndef f(cfg):\n    dask.config.set(cfg)\n",
    "**mapping": "import dask\n\ndef f(cfg):\n    dask.config.set(**cfg)\n",
    "with dask.config.set, the text of a script": (
        "import dask.config\n"
        'with dask.config.set({"distributed.worker.preload": "import evil\\n"}):\n    pass\n'
    ),
    "the active memory manager's policy class": (
        "import dask\ndask.config.set("
        '{"distributed.scheduler.active-memory-manager.policies": [{"class": "data.evil.P"}]})\n'
    ),
    "the client's security loader": (
        'import dask\ndask.config.set({"distributed.client.security-loader": "data.evil.load"})\n'
    ),
    "under _ for -": (
        'import dask\ndask.config.set({"distributed.client.security_loader": "data.evil.load"})\n'
    ),
}
DASK_SETS_ALLOWED = {
    "the scheduler by keyword": 'import dask\ndask.config.set(scheduler="threads")\n',
    "another dotted key": (
        'import dask\ndask.config.set({"array.slicing.split_large_chunks": False})\n'
    ),
    "a scanned module's preload": (
        'import dask\ndask.config.set({"distributed.worker.preload": ["src.model_io"]})\n'
    ),
    "distributed's own routes": (
        "import dask\n"
        'dask.config.set({"distributed.scheduler.http.routes": ["distributed.http.health"]})\n'
    ),
    "no security loader": (
        'import dask\ndask.config.set({"distributed.client.security-loader": None})\n'
    ),
}

# 2. operator.methodcaller applied to an in-process starter.
METHODCALLERS = {
    "methodcaller(run, an import string)(uvicorn)": (
        'import operator, uvicorn\noperator.methodcaller("run", "data.evil:app")(uvicorn)\n'
    ),
    "methodcaller(run, app_dir=)(uvicorn)": (
        "import operator, uvicorn\napp = object()\n"
        'operator.methodcaller("run", app, app_dir="data")(uvicorn)\n'
    ),
    "a named methodcaller called on uvicorn": (
        'import operator, uvicorn\nserve = operator.methodcaller("run", "data.evil:app")\n'
        "serve(uvicorn)\n"
    ),
    "from operator import methodcaller; (main)(pytest)": (
        'from operator import methodcaller\nimport pytest\nmethodcaller("main", ["data"])(pytest)\n'
    ),
    "methodcaller(Config)(uvicorn).load()": (
        "import operator, uvicorn\n"
        'operator.methodcaller("Config", "data.evil:app")(uvicorn).load()\n'
    ),
    "methodcaller(Coverage)(coverage)": (
        'import operator, coverage\noperator.methodcaller("Coverage")(coverage).start()\n'
    ),
    "methodcaller(main, module=)(unittest)": (
        'import operator, unittest\noperator.methodcaller("main", module="data.evil")(unittest)\n'
    ),
    "methodcaller(run) on a parameter": (
        "import operator\n\ndef go(m):\n"
        '    return operator.methodcaller("run", "data.evil:app")(m)\n'
    ),
    "methodcaller(run) given to map": (
        "import operator, uvicorn\n"
        'list(map(operator.methodcaller("run", "data.evil:app"), [uvicorn]))\n'
    ),
    "methodcaller(main) on an item of a list": (
        "import operator, pytest\ntools = [pytest]\n"
        'operator.methodcaller("main", ["data"])(tools[0])\n'
    ),
}
METHODCALLERS_ALLOWED = {
    "a scanned module's app": (
        'import operator, uvicorn\noperator.methodcaller("run", "src.model_io:app")(uvicorn)\n'
    ),
    "an application object": (
        "import operator, uvicorn\napp = object()\n"
        'operator.methodcaller("run", app, port=0)(uvicorn)\n'
    ),
    "methodcaller(split) given to map": (
        'import operator\nlist(map(operator.methodcaller("split", ","), ["a,b"]))\n'
    ),
    "subprocess.run of a fixed program": (
        'import operator\noperator.methodcaller("run", ["ls"])(subprocess)\n'
    ),
    "unittest.main() of the module's own tests": (
        'import operator, unittest\noperator.methodcaller("main")(unittest)\n'
    ),
    "Coverage(config_file=False)": (
        "import operator, coverage\n"
        'operator.methodcaller("Coverage", config_file=False)(coverage).start()\n'
    ),
    "run() on an instance of the module's own class": (
        "import operator\n\nclass Task:\n    def run(self):\n        return 1\n\n"
        'operator.methodcaller("run")(Task())\n'
    ),
    "run() on a name bound to one": (
        "import operator\n\nclass Task:\n    def run(self):\n        return 1\n\n"
        'task = Task()\noperator.methodcaller("run")(task)\n'
    ),
}

# 3. coverage run where the working folder's configuration is still read.
COVERAGE_RUN = {
    "the coverage program, run a scanned script": (
        'subprocess.run(["coverage", "run", "src/model_io.py"])\n'
    ),
    "the coverage program, run with no script": 'subprocess.run(["coverage", "run"])\n',
    "the coverage program, run -m a scanned module": (
        'subprocess.run(["coverage", "run", "-m", "src.model_io"])\n'
    ),
    "-I -m coverage run": (
        'subprocess.run([sys.executable, "-I", "-m", "coverage", "run", "src/model_io.py"])\n'
    ),
    "-P -m coverage run -m": (
        'subprocess.run([sys.executable, "-P", "-m", "coverage", "run", "-m", "src.model_io"])\n'
    ),
    "-I -m coverage run, no script": (
        'subprocess.run([sys.executable, "-I", "-m", "coverage", "run"])\n'
    ),
    "the coverage program, a computed command": (
        'def cov(cmd):\n    subprocess.run(["coverage", cmd])\n'
    ),
    "the coverage program, report": 'subprocess.run(["coverage", "report"])\n',
    "the coverage program, html": 'subprocess.run(["coverage", "html", "-d", "/tmp/h"])\n',
    "-I -m coverage xml": 'subprocess.run([sys.executable, "-I", "-m", "coverage", "xml"])\n',
    "the coverage program in a shell string": (
        'subprocess.run("cd src && coverage run -m model_io", shell=True)\n'
    ),
}
COVERAGE_RUN_ALLOWED = {
    "the coverage program, run with --rcfile=/dev/null": (
        'subprocess.run(["coverage", "run", "--rcfile=/dev/null", "src/model_io.py"])\n'
    ),
    "-I -m coverage run --rcfile /dev/null": (
        'subprocess.run([sys.executable, "-I", "-m", "coverage", "run", "--rcfile", '
        '"/dev/null", "-m", "src.model_io"])\n'
    ),
    "the coverage program, erase": 'subprocess.run(["coverage", "erase"])\n',
    "-I -m coverage combine": 'subprocess.run([sys.executable, "-I", "-m", "coverage", "combine"])\n',
    "the coverage program, report --rcfile=/dev/null": (
        'subprocess.run(["coverage", "report", "--rcfile=/dev/null", "--include", "run"])\n'
    ),
    "-P -m coverage debug sys": (
        'subprocess.run([sys.executable, "-P", "-m", "coverage", "debug", "sys"])\n'
    ),
}

PLANTED = {
    "dask env": DASK_ENV,
    "dask.config.set": DASK_SETS,
    "methodcaller": METHODCALLERS,
    "coverage run": COVERAGE_RUN,
}
ALLOWED = {
    "dask env": DASK_ENV_ALLOWED,
    "dask.config.set": DASK_SETS_ALLOWED,
    "methodcaller": METHODCALLERS_ALLOWED,
    "coverage run": COVERAGE_RUN_ALLOWED,
}
RULE = {
    "dask env": "SAST107",
    "dask.config.set": "SAST104",
    "methodcaller": "SAST104",
    "coverage run": "SAST107",
}


@pytest.mark.parametrize(("table", "plant"), [(t, p) for t in PLANTED for p in PLANTED[t]])
def test_each_form_is_a_finding(tmp_path: Path, table: str, plant: str) -> None:
    found = _found(_scan(tmp_path, PLANTED[table][plant]))
    assert found, plant
    assert all(f.path == "src/model_io.py" and f.line > 0 for f in found), found
    assert {f.rule for f in found} == {RULE[table]}, found


@pytest.mark.parametrize(("table", "plant"), [(t, p) for t in ALLOWED for p in ALLOWED[t]])
def test_each_control_stays_clean(tmp_path: Path, table: str, plant: str) -> None:
    assert _found(_scan(tmp_path, ALLOWED[table][plant])) == []


def test_the_methodcaller_finding_names_the_call_and_the_receiver(tmp_path: Path) -> None:
    found = _found(_scan(tmp_path, METHODCALLERS["methodcaller(run, an import string)(uvicorn)"]))
    assert len(found) == 1
    assert "uvicorn.run" in found[0].message
    assert "operator.methodcaller" in found[0].message
    assert "data.evil" in found[0].message
    unknown = _found(_scan(tmp_path / "u", METHODCALLERS["methodcaller(run) on a parameter"]))
    assert len(unknown) == 1
    assert "not known here" in unknown[0].message
    assert "uvicorn.run" in unknown[0].message


def _coverage(root: Path, *args: str, program: bool = False) -> bool:
    """Run the real coverage in ``root`` (the program, or ``python ARGS``): whether
    ``data/evil.py`` or the plugin ran (each writes ``RAN``)."""
    (root / "RAN").unlink(missing_ok=True)
    command = (
        [str(Path(sys.executable).with_name("coverage")), *args]
        if program
        else [
            sys.executable,
            *args,
        ]
    )
    subprocess.run(  # this interpreter or its coverage, fixed arguments
        command, cwd=root, env=_clean_env(), capture_output=True, timeout=120, check=False
    )
    return (root / "RAN").exists()


def test_real_coverage_run_reads_the_working_folders_configuration(tmp_path: Path) -> None:
    """The real coverage (7.17): the working folder's ``[run] command_line`` is the program
    ``coverage run`` runs when given none, from the ``coverage`` program and under ``-I``; the
    ``coverage`` program's ``run -m`` puts the working folder first on ``sys.path`` before it
    imports the plugins the configuration names. ``--rcfile=/dev/null`` stops each."""
    pytest.importorskip("coverage")
    if not Path(sys.executable).with_name("coverage").is_file():
        pytest.skip("no coverage program beside this interpreter")
    (tmp_path / "data").mkdir()
    mark = 'import pathlib\npathlib.Path("RAN").write_text("x")\n'
    (tmp_path / "data" / "evil.py").write_text(mark, encoding="utf-8")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "src" / "model_io.py").write_text("print(1)\n", encoding="utf-8")
    (tmp_path / ".coveragerc").write_text("[run]\ncommand_line = data/evil.py\n", encoding="utf-8")
    assert _coverage(tmp_path, "run", program=True)
    assert _coverage(tmp_path, "-I", "-m", "coverage", "run")
    assert not _coverage(tmp_path, "run", "--rcfile=/dev/null", program=True)
    assert not _coverage(tmp_path, "-I", "-m", "coverage", "run", "--rcfile=/dev/null")
    (tmp_path / "evilplug.py").write_text(
        mark + "def coverage_init(reg, options):\n    pass\n", encoding="utf-8"
    )
    (tmp_path / ".coveragerc").write_text("[run]\nplugins = evilplug\n", encoding="utf-8")
    assert _coverage(tmp_path, "run", "-m", "src.model_io", program=True)
    assert not _coverage(tmp_path, "run", "--rcfile=/dev/null", "-m", "src.model_io", program=True)
    assert _coverage(tmp_path, "report", program=True)  # coverage puts "" first on sys.path
    assert _coverage(tmp_path, "-I", "-m", "coverage", "html", "-d", "h")
    assert not _coverage(tmp_path, "report", "--rcfile=/dev/null", program=True)
    assert not _coverage(tmp_path, "erase", program=True)  # the controls' premise
    assert not _coverage(tmp_path, "-I", "-m", "coverage", "combine")
    source = 'subprocess.run(["coverage", "run"])\n'
    assert [f.rule for f in _found(_scan(tmp_path / "scan", source))] == ["SAST107"]


def test_a_methodcaller_of_uvicorn_config_really_imports_the_tree(tmp_path: Path) -> None:
    """The real uvicorn: ``methodcaller("Config", "data.evil:app")(uvicorn).load()`` imports
    ``data/evil.py`` (its marker written); the same source is a finding."""
    pytest.importorskip("uvicorn")
    source = 'import operator, uvicorn\noperator.methodcaller("Config", "data.evil:app")(uvicorn).load()\n'
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "data" / "evil.py").write_text(
        'import pathlib\npathlib.Path("RAN").write_text("x")\n\n'
        "async def app(scope, receive, send):\n    pass\n",
        encoding="utf-8",
    )
    (tmp_path / "run.py").write_text(source, encoding="utf-8")
    subprocess.run(  # this interpreter, a fixed script
        [sys.executable, "run.py"],
        cwd=tmp_path,
        env=_clean_env(),
        check=True,
        timeout=60,
        capture_output=True,
    )
    assert (tmp_path / "RAN").is_file()
    assert [f.rule for f in _found(_scan(tmp_path / "scan", source))] == ["SAST104"]


def test_the_dask_finding_names_the_variable_the_key_and_the_module(tmp_path: Path) -> None:
    found = _found(_scan(tmp_path, DASK_ENV["env= DASK_DISTRIBUTED__WORKER__PRELOAD"]))
    assert len(found) == 1
    assert "DASK_DISTRIBUTED__WORKER__PRELOAD" in found[0].message
    assert "distributed.worker.preload" in found[0].message
    assert "data.evil" in found[0].message


DASK_CHILD = """
import distributed
try:
    with distributed.LocalCluster(
        n_workers=1, processes=False, dashboard_address=None, host="127.0.0.1"
    ):
        pass
except Exception:
    pass
"""


def test_real_dask_imports_the_preload_its_configuration_names(tmp_path: Path) -> None:
    """The real dask/distributed: a scheduler started with ``DASK_CONFIG`` naming a folder of
    the tree (a YAML file there setting ``distributed.scheduler.preload``), or with
    ``DASK_DISTRIBUTED__SCHEDULER__PRELOAD`` set, imports ``data/evil.py`` (its marker written,
    loopback only; the cluster need not start); without either it does not."""
    pytest.importorskip("distributed")
    (tmp_path / "data" / "dask").mkdir(parents=True)
    (tmp_path / "data" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "data" / "evil.py").write_text(
        'import pathlib\npathlib.Path("RAN").write_text("x")\n', encoding="utf-8"
    )
    (tmp_path / "data" / "dask" / "evil.yaml").write_text(
        "distributed:\n  scheduler:\n    preload:\n      - data.evil\n", encoding="utf-8"
    )

    def child(**extra: str) -> bool:
        (tmp_path / "RAN").unlink(missing_ok=True)
        subprocess.run(  # this interpreter, fixed code, loopback only
            [sys.executable, "-c", DASK_CHILD],
            cwd=tmp_path,
            env={**_clean_env(), **extra},
            capture_output=True,
            timeout=180,
            check=False,
        )
        return (tmp_path / "RAN").exists()

    assert child(DASK_CONFIG="data/dask")
    assert child(DASK_DISTRIBUTED__SCHEDULER__PRELOAD="data.evil")
    assert not child()  # the control
    source = 'os.environ["DASK_CONFIG"] = "data/dask"\n'
    assert [f.rule for f in _found(_scan(tmp_path / "scan", source))] == ["SAST107"]


# 4. A project's own runner (decided, not closed: docs/supply-chain.md "A project's own
# runner"): its own code, where scanned, imports or runs by a name computed at run time, and
# that is a finding there already (guards, green before this change).
PROJECT_RUNNER = {
    "importlib.import_module(sys.argv[1])": (
        "import importlib\n\ndef main():\n    importlib.import_module(sys.argv[1]).run()\n",
        "SAST102",
    ),
    "__import__(argv[0])": ("def main(argv):\n    __import__(argv[0]).main()\n", "SAST102"),
    "pkgutil.resolve_name": (
        "import pkgutil\n\ndef main(argv):\n    pkgutil.resolve_name(argv[0])()\n",
        "SAST102",
    ),
    "runpy.run_module(sys.argv[1])": (
        'import runpy\n\ndef main():\n    runpy.run_module(sys.argv[1], run_name="__main__")\n',
        "SAST104",
    ),
    "an entry point named on the command line": (
        "from importlib.metadata import entry_points\n\n"
        'def main(name):\n    entry_points(group="mytool")[name].load()()\n',
        "SAST102",
    ),
}


@pytest.mark.parametrize("plant", list(PROJECT_RUNNER))
def test_a_project_runner_fails_where_its_code_is_scanned(tmp_path: Path, plant: str) -> None:
    source, rule = PROJECT_RUNNER[plant]
    found = [f for f in _scan(tmp_path, source) if f.rule.startswith("SAST1")]
    assert {f.rule for f in found} == {rule}, found
