"""SAST107's forms sast108 left open (sast109, ``docs/trust-model.md`` rows 142-145): each a way
for a pull request's author to run ``data/evil.py`` (or ``data/``'s code) through code the sast
gate passed. One table per form, with the controls that must stay clean:

1. runners not on sast108's lists: task queues' workers (``dramatiq``, ``rq worker``,
   ``huey_consumer``), app servers of scripts and notebooks (``bokeh serve``, ``panel serve``,
   ``voila``), the notebook runners' own programs (``jupyter-nbconvert --execute``,
   ``jupyter-execute``), and dask's ``--preload`` (a module, a file, a URL, script text);
2. the same run in this process: ``uvicorn.run("pkg:app")`` (an import string, ``app_dir=``),
   gunicorn's applications, ``coverage.Coverage()`` reading the tree's configuration, a Celery
   app's ``worker_main``; ``importlib.import_module`` of a computed name (SAST102 already);
3. a ``*argv`` helper that is a method, called from another module;
4. a tool's configuration file named by a path: a finding when the path is the tree's (relative,
   or under the scanned file's folder), not when it is the system's (``/etc/...``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gates.unsafe_load import UnsafeLoad
from tests.attacks.test_redteam10_unsafe_loaders import _sast
from tests.attacks.test_sast107_gaps import _scan
from tests.attacks.test_sast_child_code import EVIL
from tests.hostile_support import scanned_project


def _found(found: list[UnsafeLoad]) -> list[UnsafeLoad]:
    return [f for f in found if f.rule in ("SAST102", "SAST104", "SAST107")]


# 1. Runners that import or run the code their command line, environment or working folder names.
RUNNERS = {
    "dramatiq": 'subprocess.run(["dramatiq", "data.evil"])\n',
    "-m dramatiq": 'subprocess.run([sys.executable, "-I", "-m", "dramatiq", "data.evil"])\n',
    "rq worker": 'subprocess.run(["rq", "worker", "--path", "data", "high"])\n',
    "rqworker": 'subprocess.run(["rqworker", "-c", "settings"])\n',
    "huey_consumer": 'subprocess.run(["huey_consumer", "data.evil.huey"])\n',
    "-m huey.bin.huey_consumer": (
        'subprocess.run([sys.executable, "-m", "huey.bin.huey_consumer", "data.evil.huey"])\n'
    ),
    "bokeh serve": 'subprocess.run(["bokeh", "serve", "data/evil.py"])\n',
    "-m bokeh serve": 'subprocess.run([sys.executable, "-m", "bokeh", "serve", "data"])\n',
    "panel serve": 'subprocess.run(["panel", "serve", "data/evil.ipynb"])\n',
    "voila": 'subprocess.run(["voila", "data/evil.ipynb", "--no-browser"])\n',
    "jupyter-nbconvert --execute": (
        'subprocess.run(["jupyter-nbconvert", "--execute", "--to", "html", "data/a.ipynb"])\n'
    ),
    "jupyter nbconvert --execute in a shell": (
        'subprocess.run("jupyter nbconvert --execute data/a.ipynb", shell=True)\n'
    ),
    "jupyter-execute": 'subprocess.run(["jupyter-execute", "data/a.ipynb"])\n',
    "papermill": 'subprocess.run(["papermill", "data/a.ipynb", "out.ipynb"])\n',
    "dask-worker --preload a module": (
        'subprocess.run(["dask-worker", "tcp://127.0.0.1:8786", "--preload", "data.evil"])\n'
    ),
    "dask worker --preload=a file": (
        'subprocess.run(["dask", "worker", "tcp://[::1]:8786", "--preload=data/evil.py"])\n'
    ),
    "dask scheduler --preload a URL": (
        'subprocess.run(["dask", "scheduler", "--preload", "https://example.org/x.py"])\n'
    ),
    "dask-worker --preload script text": (
        'subprocess.run(["dask-worker", "--preload", "import data.evil", "tcp://[::1]:1"])\n'
    ),
    "dask-worker --preload-nanny": (
        'subprocess.run(["dask-worker", "--nanny", "--preload-nanny", "data.evil"])\n'
    ),
    "-m distributed.cli.dask_worker --preload": (
        'subprocess.run([sys.executable, "-m", "distributed.cli.dask_worker", "--preload", '
        '"data.evil"])\n'
    ),
    "dask-worker --preload computed": (
        'def go(pre):\n    subprocess.run(["dask-worker", "--preload", pre])\n'
    ),
    "dask spec": 'subprocess.run(["dask", "spec", "--spec", "{}"])\n',
    "dask, the command computed": 'def go(cmd):\n    subprocess.run(["dask", cmd])\n',
}
RUNNERS_ALLOWED = {
    "dask-worker, the scheduler's address computed": (
        'def go(host):\n    subprocess.run(["dask-worker", f"tcp://{host}:8786", "--nthreads", "1"])\n'
    ),
    "dask-worker without --preload": (
        'subprocess.run(["dask-worker", "tcp://[::1]:8786", "--nthreads", "1"])\n'
    ),
    "dask-worker --preload a scanned file": (
        'subprocess.run(["dask-worker", "--preload", "src/model_io.py", "tcp://[::1]:1"])\n'
    ),
    "dask-worker --preload an installed module": (
        'subprocess.run(["dask-worker", "--preload", "distributed.diagnostics", "tcp://[::1]:1"])\n'
    ),
    "dask info": 'subprocess.run(["dask", "info", "versions"])\n',
    "-m http.server (serves files, runs none)": (
        'subprocess.run([sys.executable, "-m", "http.server", "-b", "127.0.0.1", "0"])\n'
    ),
    "git grep dramatiq (an argument)": 'subprocess.run(["git", "grep", "dramatiq"])\n',
    "echo voila": 'subprocess.run(["echo", "voila"])\n',
}

# 4. A tool's configuration file named by a path: the tree's (relative, or under the scanned
#    file's folder, or an absolute path that may be the checkout's) imports its plugins.
CONFIG_PATHS = {
    "pylint --rcfile=a file of the tree": (
        'subprocess.run([sys.executable, "-m", "pylint", "--rcfile=data/.pylintrc", "src"])\n'
    ),
    "mypy --config-file pyproject.toml": (
        'subprocess.run(["mypy", "--config-file", "pyproject.toml", "src"])\n'
    ),
    "mypy --config-file under the scanned file's folder": (
        'subprocess.run(["mypy", "--config-file", ROOT / "data" / "mypy.ini", "src"])\n'
    ),
    "flake8 --config setup.cfg": 'subprocess.run(["flake8", "--config", "setup.cfg", "src"])\n',
    "coverage --rcfile an absolute path (CI's checkout)": (
        'subprocess.run([sys.executable, "-m", "coverage", "report", '
        '"--rcfile=/home/runner/work/p/p/.coveragerc"])\n'
    ),
    "pylint --rcfile /etc/../ the checkout": (
        'subprocess.run(["pylint", "--rcfile", "/etc/../builds/p/.pylintrc", "src"])\n'
    ),
    "pylint --rcfile computed": (
        'def lint(rc):\n    subprocess.run(["pylint", "--rcfile", rc, "src"])\n'
    ),
    "pylint --rcfile twice, the tree's last": (
        'subprocess.run(["pylint", "--rcfile=/dev/null", "--rcfile=data/.pylintrc", "src"])\n'
    ),
    "pylint --load-plugins the tree's module": (
        'subprocess.run(["pylint", "--rcfile=/dev/null", "--load-plugins=data.evil", "src"])\n'
    ),
    "pylint --init-hook": (
        'subprocess.run(["pylint", "--rcfile=/dev/null", "--init-hook", "import evil", "src"])\n'
    ),
    "flake8 --isolated --append-config": (
        'subprocess.run(["flake8", "--config=/dev/null", "--append-config", ".flake8", "src"])\n'
    ),
}
CONFIG_PATHS_ALLOWED = {
    "pylint --load-plugins an installed extension": (
        'subprocess.run(["pylint", "--rcfile=/dev/null", "--load-plugins", '
        '"pylint.extensions.docparams", "src"])\n'
    ),
    "pylint --rcfile=/etc/pylintrc": 'subprocess.run(["pylint", "--rcfile=/etc/pylintrc", "src"])\n',
    "mypy --config-file /usr/share/...": (
        'subprocess.run(["mypy", "--config-file", "/usr/share/mypy/mypy.ini", "src"])\n'
    ),
    "coverage --rcfile os.devnull": (
        'subprocess.run([sys.executable, "-m", "coverage", "report", "--rcfile", os.devnull])\n'
    ),
    "flake8 --config=/dev/null": 'subprocess.run(["flake8", "--config=/dev/null", "src"])\n',
}

# 2. The same run in this process, the code named by text (an import string, a setting, the
#    working folder's configuration).
GUNICORN = (
    "from gunicorn.app.base import BaseApplication\n\n"
    "class Standalone(BaseApplication):\n"
    "    def __init__(self, app, options):\n"
    "        self.application, self.options = app, options\n"
    "        super().__init__()\n\n"
    "    def load_config(self):\n"
    "        for key, value in self.options.items():\n"
    "            self.cfg.set(key.lower(), value)\n\n"
    "    def load(self):\n"
    "        return self.application\n\n"
)
IN_PROCESS = {
    "uvicorn.run(an import string)": 'import uvicorn\nuvicorn.run("data.evil:app")\n',
    "uvicorn.run(app_dir=)": 'import uvicorn\nuvicorn.run("evil:app", app_dir="data")\n',
    "uvicorn.run(an object, app_dir=)": (
        'import uvicorn\napp = object()\nuvicorn.run(app, app_dir="data")\n'
    ),
    "uvicorn.Config(app=...) keyword": (
        'from uvicorn import Config, Server\nServer(Config(app="data.evil:app")).run()\n'
    ),
    "uvicorn.run(an f-string)": (
        'import uvicorn\n\ndef serve(name):\n    uvicorn.run(f"{name}:app", reload=True)\n'
    ),
    "uvicorn.run(from the environment)": (
        'import uvicorn\nuvicorn.run(os.environ["APP"], factory=True)\n'
    ),
    "uvicorn's click command": 'from uvicorn.main import main\nmain(["data.evil:app"])\n',
    "gunicorn's WSGIApplication": (
        "from gunicorn.app.wsgiapp import WSGIApplication\n"
        'WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").run()\n'
    ),
    "a subclass of gunicorn's Application": (
        "from gunicorn.app.base import Application\n\nclass App(Application):\n"
        "    def load(self):\n        return None\n"
    ),
    "gunicorn BaseApplication, worker_class named": (
        GUNICORN + 'Standalone(object(), {"worker_class": "data.evil.Worker"}).run()\n'
    ),
    "gunicorn BaseApplication, a Python config file": (
        GUNICORN + 'Standalone(object(), {"config": "data/gunicorn.conf.py"}).run()\n'
    ),
    "gunicorn BaseApplication, pythonpath": (
        GUNICORN + 'Standalone(object(), dict(bind="[::1]:0", pythonpath="data")).run()\n'
    ),
    "gunicorn cfg.set(literal)": (
        "from gunicorn.app.base import BaseApplication\n\nclass A(BaseApplication):\n"
        "    def load_config(self):\n"
        '        self.cfg.set("wsgi_app", "data.evil:app")\n'
    ),
    "celery worker_main": (
        'from celery import Celery\napp = Celery("tasks")\napp.worker_main(["worker"])\n'
    ),
    "celery app.Worker().start()": (
        'import celery\napp = celery.Celery("tasks", include=["data.evil"])\napp.Worker().start()\n'
    ),
    "coverage.Coverage()": "import coverage\ncov = coverage.Coverage()\ncov.start()\n",
    "coverage.Coverage(config_file=a file of the tree)": (
        'from coverage import Coverage\nCoverage(config_file="setup.cfg").load()\n'
    ),
    "a Celery subclass's worker_main": (
        'from celery import Celery\n\nclass App(Celery):\n    pass\n\nApp("t").worker_main()\n'
    ),
    "a subclass of coverage.Coverage": (
        "import coverage\n\nclass Cov(coverage.Coverage):\n    pass\n"
    ),
    "uvicorn.run(*args)": 'import uvicorn\nARGS = ["data.evil:app"]\nuvicorn.run(*ARGS)\n',
    "distributed.Worker(preload=[a module])": (
        'from distributed import Worker\nWorker("tcp://[::1]:8786", preload=["data.evil"])\n'
    ),
    "distributed.Nanny(preload_nanny=a file)": (
        'import distributed\ndistributed.Nanny("tcp://[::1]:1", preload_nanny="data/evil.py")\n'
    ),
    "coverage.Coverage(**options)": (
        'import coverage\nOPTIONS = {"branch": True}\ncoverage.Coverage(**OPTIONS).start()\n'
    ),
}
IN_PROCESS_ALLOWED = {
    "uvicorn.run(an application object)": (
        "import uvicorn\n\nasync def app(scope, receive, send):\n    pass\n\n"
        'uvicorn.run(app, host="127.0.0.1", port=0)\n'
    ),
    "uvicorn.run(a scanned module's app)": 'import uvicorn\nuvicorn.run("src.model_io:app")\n',
    "uvicorn.run(an installed module's app)": (
        'import uvicorn\nuvicorn.run("mlflow.server:app", app_dir="src")\n'
    ),
    "gunicorn BaseApplication, a built-in worker and an installed one": (
        GUNICORN + 'Standalone(object(), {"worker_class": "gthread", "bind": "[::1]:0"}).run()\n'
        'Standalone(object(), {"worker_class": "uvicorn.workers.UvicornWorker"}).run()\n'
    ),
    "celery's Celery without a worker": (
        'from celery import Celery\napp = Celery("tasks")\napp.send_task("add", (1, 2))\n'
    ),
    "distributed.Worker without preload, and preload=None": (
        'import distributed\ndistributed.Worker("tcp://[::1]:1", nthreads=1)\n'
        "distributed.Scheduler(preload=None)\n"
    ),
    "coverage.Coverage(config_file=False)": (
        "import coverage\ncoverage.Coverage(config_file=False).start()\n"
    ),
    "coverage.Coverage(config_file=os.devnull)": (
        "import coverage\ncoverage.Coverage(config_file=os.devnull, branch=True).start()\n"
    ),
    "coverage.Coverage positional config_file=False": (
        'import coverage\ncoverage.Coverage(".cov", None, None, False, None, True, False)\n'
    ),
}

# 2b. An import whose module name is computed at run time: SAST102 already (guards).
IMPORTS = {
    "importlib.import_module(a name from the environment)": (
        'import importlib\nimportlib.import_module(os.environ["PLUGIN"])\n'
    ),
    "importlib.import_module(a parameter)": (
        "import importlib\n\ndef load(name):\n    return importlib.import_module(name)\n"
    ),
    "__import__(an f-string)": 'def load(x):\n    return __import__(f"data.{x}")\n',
    "importlib.import_module(a file's text)": (
        'import importlib\nimportlib.import_module(Path("plugin.txt").read_text().strip())\n'
    ),
}

PLANTED = {
    "runners": RUNNERS,
    "config paths": CONFIG_PATHS,
    "in process": IN_PROCESS,
    "import": IMPORTS,
}
ALLOWED = {
    "runners": RUNNERS_ALLOWED,
    "config paths": CONFIG_PATHS_ALLOWED,
    "in process": IN_PROCESS_ALLOWED,
}


@pytest.mark.parametrize(("table", "plant"), [(t, p) for t in PLANTED for p in PLANTED[t]])
def test_each_form_is_a_finding(tmp_path: Path, table: str, plant: str) -> None:
    found = _found(_scan(tmp_path, PLANTED[table][plant]))
    assert found, plant
    assert all(f.path == "src/model_io.py" and f.line > 0 for f in found), found
    rule = {"in process": "SAST104", "import": "SAST102"}.get(table, "SAST107")
    assert {f.rule for f in found} == {rule}, found


@pytest.mark.parametrize(("table", "plant"), [(t, p) for t in ALLOWED for p in ALLOWED[t]])
def test_each_control_stays_clean(tmp_path: Path, table: str, plant: str) -> None:
    assert _found(_scan(tmp_path, ALLOWED[table][plant])) == []


def test_a_configuration_of_the_tree_is_named(tmp_path: Path) -> None:
    [found] = _found(_scan(tmp_path, CONFIG_PATHS["pylint --rcfile=a file of the tree"]))
    assert "the configuration data/.pylintrc, a file of the tree" in found.message, found.message
    assert "load-plugins" in found.message


# 3. A *argv helper that is a method of a class in src/model_io.py, called from src/caller.py.
METHOD = (
    "class Runner:\n    def run_all(self, *argv):\n        return subprocess.run(argv)\n\n"
    "    @staticmethod\n    def each(*argv):\n        return subprocess.run(list(argv))\n\n"
    "    @classmethod\n    def every(cls, *argv):\n        return subprocess.run(argv)\n"
)
METHODS = {
    "from m import Cls; Cls().method(...)": (
        'from src.model_io import Runner\nRunner().run_all("python3", "data/evil.py")\n'
    ),
    "an instance bound to a name": (
        "import sys\nfrom src.model_io import Runner\nr = Runner()\n"
        'r.run_all(sys.executable, "-m", "pip", "install", ".")\n'
    ),
    "m.Cls().method(...)": (
        'from src import model_io\nmodel_io.Runner().run_all("uvicorn", "data.evil:app")\n'
    ),
    "on the class, the instance first": (
        'from src.model_io import Runner\nRunner.run_all(Runner(), "python3", "data/evil.py")\n'
    ),
    "an instance held by another object": (
        "from src.model_io import Runner\n\nclass Job:\n    def __init__(self):\n"
        "        self.runner = Runner()\n\n    def go(self):\n"
        '        return self.runner.run_all("python3", "data/evil.py")\n'
    ),
    "a staticmethod": 'from src.model_io import Runner\nRunner.each("python3", "data/evil.py")\n',
    "a staticmethod on an instance": (
        'from src.model_io import Runner\nRunner().each("python3", "-I", "data/evil.py")\n'
    ),
    "a subclass, on the class, the instance first": (
        "from src.model_io import Runner\n\nclass sub(Runner):\n    pass\n\n"
        'sub.run_all(sub(), "python3", "data/evil.py")\n'
    ),
    "a classmethod": (
        'from src.model_io import Runner\nRunner.every("python3", "-I", "data/evil.py")\n'
    ),
}
METHODS_ALLOWED = {
    "a scanned script": (
        'from src.model_io import Runner\nRunner().run_all("python3", "src/model_io.py")\n'
    ),
    "on the class, a scanned script": (
        'from src.model_io import Runner\nRunner.run_all(Runner(), "python3", "src/caller.py")\n'
    ),
    "not a command line (git)": 'from src.model_io import Runner\nRunner().run_all("git", "log")\n',
    "another module's method of that name": (
        'import other\nother.Runner().run_all("python3", "data/evil.py")\n'
    ),
}


@pytest.mark.parametrize("plant", list(METHODS))
def test_a_method_helper_given_a_line_by_another_module(tmp_path: Path, plant: str) -> None:
    found = _found(_scan(tmp_path, METHOD, METHODS[plant]))
    assert [f.rule for f in found] == ["SAST107"], found
    assert found[0].path == "src/model_io.py"
    assert "src/caller.py:" in found[0].message, found[0].message


@pytest.mark.parametrize("plant", list(METHODS_ALLOWED))
def test_a_method_helper_given_nothing_unscanned(tmp_path: Path, plant: str) -> None:
    assert _found(_scan(tmp_path, METHOD, METHODS_ALLOWED[plant])) == []


def test_a_method_helper_called_in_its_own_module(tmp_path: Path) -> None:
    source = METHOD + 'r = Runner()\nr.run_all("python3", "data/evil.py")\n'
    found = _found(_scan(tmp_path, source))
    assert [f.rule for f in found] == ["SAST107"], found
    assert "line " in found[0].message


# Rows 142-145 in one real plant: coverage.Coverage() importing a plugin the tree's .coveragerc
# names, uvicorn.Config("data.evil:app") loading its application, and a *argv method helper
# given data/evil.py by another module each run data/ code (3 times); the real sast gate names
# each line.
PLANT = """import subprocess  # nosec B404
import sys

import coverage
import uvicorn


class Runner:
    def run_all(self, *argv):
        return subprocess.run(argv, capture_output=True, text=True, check=False)  # nosec B603 SAST107


def measured():
    cov = coverage.Coverage()  # SAST104
    cov.start()
    cov.stop()


def served():
    config = uvicorn.Config("data.evil:app", log_level="critical")  # SAST104
    config.load()
"""
CALLER = """import sys

from model_io import Runner, measured, served

measured()
served()
print(Runner().run_all(sys.executable, "data/evil.py").stdout)
"""


def _planted(tmp_path: Path) -> Path:
    root = scanned_project(tmp_path / "project")
    (root / "src" / "model_io.py").write_text(PLANT, encoding="utf-8")
    (root / "src" / "caller.py").write_text(CALLER, encoding="utf-8")
    app = "\n\nasync def app(scope, receive, send):\n    pass\n"
    (root / "data" / "evil.py").write_text(EVIL + app, encoding="utf-8")
    (root / "data" / "covplug.py").write_text(
        EVIL + "\n\ndef coverage_init(reg, options):\n    pass\n", encoding="utf-8"
    )
    (root / ".coveragerc").write_text("[run]\nplugins = data.covplug\n", encoding="utf-8")
    return root


def test_each_form_really_runs_the_unscanned_code(tmp_path: Path) -> None:
    root = _planted(tmp_path)
    done = subprocess.run(  # this interpreter on the planted script, the root on its path
        [sys.executable, str(root / "src" / "caller.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("unscanned pickle.loads") == 3, done.stdout


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
    assert len(lines) == 3
    for line, rule in lines:
        assert f"{rule} src/model_io.py:{line}" in out, out


@pytest.mark.parametrize(
    "use",
    [
        "from src import caller\nuvicorn.run(caller.APP)\n",
        "from src.caller import APP\nuvicorn.run(APP)\n",
    ],
)
def test_an_import_string_of_another_module(tmp_path: Path, use: str) -> None:
    found = _found(_scan(tmp_path, "import uvicorn\n" + use, 'APP = "data.evil:app"\n'))
    assert [f.rule for f in found] == ["SAST104"], found
    assert "data.evil:app is imported" in found[0].message
