"""The two hash-pinned locks agree, and the extras lock holds every extra that CI installs.

``requirements-extras.lock`` (mlflow, dask) is installed together with ``requirements.lock``
(noxfile.py ``_install_test_extras``). It must pin every package the two share exactly as the
main lock does, so that installing the extras never moves a pin of the main lock, and it must
satisfy every requirement of every extra it names, so that it is not stale.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pip_requirements_parser import RequirementsFile

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "requirements.lock"
EXTRAS_LOCK = REPO / "requirements-extras.lock"
# Extras that no environment installs from the extras lock: dev is in requirements.lock, bench
# only serves bench/run.py's comparisons.
NOT_IN_EXTRAS_LOCK = {"dev", "bench"}


@dataclass(frozen=True)
class Pin:
    version: str
    hashes: frozenset[str]
    line: int


def read_pins(path: Path) -> dict[tuple[str, str], Pin]:
    """(canonical name, marker) -> pin; every line pinned to one version with hashes."""
    parsed = RequirementsFile.from_file(str(path))
    assert not parsed.invalid_lines, f"{path.name}: {parsed.invalid_lines[0].dumps()}"
    pins: dict[tuple[str, str], Pin] = {}
    for req in parsed.requirements:
        spec = str(req.specifier or "")
        where = f"{path.name}:{req.line_number}: {req.name}"
        assert re.fullmatch(r"==[^,*]+", spec), f"{where} not pinned to one version: {spec!r}"
        assert req.hash_options, f"{where} has no hash"
        key = (canonicalize_name(str(req.name)), str(req.marker or ""))
        assert key not in pins, f"{where} pinned twice"
        pins[key] = Pin(spec[2:], frozenset(req.hash_options), int(req.line_number or 0))
    assert pins, f"{path.name} pins nothing"
    return pins


def disagreements(
    main: dict[tuple[str, str], Pin], extras: dict[tuple[str, str], Pin], name: str
) -> list[str]:
    """Each package of the extras lock that the main lock pins otherwise (version, hashes, split)."""
    shared = {package for package, _ in main}
    found = []
    for (package, marker), pin in extras.items():
        if package not in shared:
            continue
        theirs = main.get((package, marker))
        if theirs is None:
            found.append(f"{name}:{pin.line}: {package} ; {marker!r}: not a pin of {LOCK.name}")
        elif theirs.version != pin.version or theirs.hashes != pin.hashes:
            found.append(
                f"{name}:{pin.line}: {package}=={pin.version} with {len(pin.hashes)} hashes; "
                f"{LOCK.name}:{theirs.line} pins {theirs.version} with {len(theirs.hashes)}"
            )
    return found


def locked_extras() -> list[str]:
    """The extras named in the uv command of the lock's header."""
    header = EXTRAS_LOCK.read_text(encoding="utf-8").split("\n", 3)[:3]
    command = next(line for line in header if "uv pip compile" in line)
    assert "-c requirements.lock" in command, command
    return re.findall(r"--extra (\S+)", command)


def test_every_package_both_locks_pin_is_pinned_alike():
    assert disagreements(read_pins(LOCK), read_pins(EXTRAS_LOCK), EXTRAS_LOCK.name) == []


def test_the_extras_lock_holds_every_extra_but_dev_and_bench():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert sorted(locked_extras()) == sorted(set(extras) - NOT_IN_EXTRAS_LOCK)
    pins = read_pins(EXTRAS_LOCK)
    stale = []
    for extra in locked_extras():
        for line in extras[extra]:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            versions = [pin.version for (package, _), pin in pins.items() if package == name]
            if not versions or not all(requirement.specifier.contains(v) for v in versions):
                stale.append(f"[{extra}] {line}: {EXTRAS_LOCK.name} pins {versions or 'nothing'}")
    assert stale == []


_PANDAS = re.compile(r"^pandas==\S+", re.MULTILINE)


_EDITS = {
    "moved-version": lambda text: _PANDAS.sub("pandas==3.1.0", text),
    "other-spelling": lambda text: _PANDAS.sub("Pandas==3.1.0", text),
    "added-hash": lambda text: _PANDAS.sub(
        lambda m: f"{m[0]} \\\n    --hash=sha256:{'0' * 64}", text
    ),
    "other-marker": lambda text: _PANDAS.sub(lambda m: f"{m[0]} ; sys_platform == 'linux'", text),
}


@pytest.mark.parametrize("case", sorted(_EDITS))
def test_an_extras_lock_that_moves_a_main_pin_is_named(tmp_path, case):
    planted = tmp_path / EXTRAS_LOCK.name
    planted.write_text(_EDITS[case](EXTRAS_LOCK.read_text(encoding="utf-8")), encoding="utf-8")
    found = disagreements(read_pins(LOCK), read_pins(planted), planted.name)
    assert len(found) == 1, (case, found)
    assert found[0].startswith(f"{EXTRAS_LOCK.name}:")
    assert "pandas" in found[0]


# Each lock and the uv command in its header; the main lock first (the second is constrained by it).
_LOCKS = (LOCK, EXTRAS_LOCK)


def _header_command(path: Path) -> list[str]:
    header = path.read_text(encoding="utf-8").split("\n", 3)[:3]
    line = next(line for line in header if "uv pip compile" in line)
    return line.lstrip("# ").split()


@pytest.mark.parametrize("lock", _LOCKS, ids=lambda p: p.name)
def test_each_lock_keeps_the_extras_that_pip_23_needs(lock):
    # pip 23.0 and 23.2 refuse --require-hashes when a dependency asks for an extra
    # (pytest-cov: coverage[toml]) that no lock line names; uv strips extras unless told not to.
    assert "--no-strip-extras" in _header_command(lock)


def test_the_main_lock_pins_coverage_with_the_extra_pytest_cov_asks_for():
    assert re.search(r"^coverage\[toml\]==\S+ \\$", LOCK.read_text(encoding="utf-8"), re.MULTILINE)


def _uv() -> str:
    import shutil
    import sys

    found = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("uv is not on PATH: the locks' header commands need it (pip install uv)")
    return found


@pytest.mark.slow
def test_each_lock_is_what_its_header_command_writes(tmp_path):
    # Run each header's command as written, in a copy holding pyproject.toml and the committed
    # locks (uv keeps the pins an existing output file holds): the bytes must not change.
    import shutil
    import subprocess

    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    for lock in _LOCKS:
        shutil.copy2(lock, tmp_path / lock.name)
    for lock in _LOCKS:
        command = _header_command(lock)
        assert command[:3] == ["uv", "pip", "compile"], command
        done = subprocess.run(
            [_uv(), *command[1:], "--quiet"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        written = (tmp_path / lock.name).read_text(encoding="utf-8")
        assert written == lock.read_text(encoding="utf-8"), f"{lock.name} differs from its header"


@pytest.mark.slow
def test_the_lock_installs_with_pip_23_0_1_in_a_fresh_venv(tmp_path):
    # Debian 12's `python3 -m venv` brings pip 23.0.1 (the Jenkins agent's install stage);
    # Python 3.11's ensurepip brings 23.2.1 (the README's path without nox). Downloads from PyPI
    # through pip's own cache (shared across runs); without the network this fails, never skips.
    import subprocess
    import venv

    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    python = str(target / "bin" / "python")

    def pip(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, "-m", "pip", "--disable-pip-version-check", *args],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )

    old = pip("install", "pip==23.0.1")
    assert old.returncode == 0, old.stdout[-2000:] + old.stderr[-2000:]
    assert pip("--version").stdout.startswith("pip 23.0.1 ")
    # --no-compile: byte-compiling ~250 packages is most of the install's time and not what this
    # test is about (pip 23.0.1 resolving and hash-checking the lock; the import check below).
    done = pip("install", "--no-compile", "--require-hashes", "-r", str(LOCK))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    check = pip("check")
    assert check.returncode == 0, check.stdout
    imported = subprocess.run(
        [python, "-c", "import sklearn, pandas, gates.registry"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
