"""Red team 14: SAST107 bypasses (row 104): a child interpreter on code no scan read.

Each form below passed the sast gate on main before this change (red), each a way for a pull
request's author to run a file no scan read (``data/evil.py``):

1. ``python -m runpy|trace|cProfile|profile|pdb|timeit|code`` with a path or module after it:
   the module runs the argument as a script, so the argument is judged as the script;
2. ``-W error::data.evil.W`` (the warning category's module is imported) and ``-X
   pycache_prefix=data``, the command-line twins of PYTHONWARNINGS and PYTHONPYCACHEPREFIX;
3. ``cwd="data"`` with ``-m evil`` or ``-c "import evil"``: the child's working folder is first
   on its import path (without ``-I``/``-P``);
4. ``os.spawnlp`` and the other spawn variants not in the list;
5. asyncio's ``loop.subprocess_exec``/``loop.subprocess_shell``;
6. ``sys.executable`` spelled ``f"{sys.executable}"``, ``sys.executable + ""``,
   ``os.fsencode(sys.executable)``, ``vars(sys)["executable"]``, ``sys.__dict__["executable"]``,
   or returned by a lambda or a function.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gates.unsafe_load import UnsafeLoad, scan

HEAD = "import asyncio, os, subprocess, sys\n"

PLANTED = {
    # 1. modules that run the script or module given after them
    "-m runpy a path": 'subprocess.run([sys.executable, "-m", "runpy", "data/evil.py"])\n',
    "-m runpy a module": 'subprocess.run([sys.executable, "-m", "runpy", "data.evil"])\n',
    "-m trace --count a path": (
        'subprocess.run([sys.executable, "-m", "trace", "--count", "data/evil.py"])\n'
    ),
    "-m cProfile a path": 'subprocess.run([sys.executable, "-m", "cProfile", "data/evil.py"])\n',
    "-m cProfile -m a module": (
        'subprocess.run([sys.executable, "-m", "cProfile", "-m", "data.evil"])\n'
    ),
    "-m profile a path": 'subprocess.run(["python3", "-m", "profile", "data/evil.py"])\n',
    "-m pdb a path": 'subprocess.run([sys.executable, "-m", "pdb", "data/evil.py"])\n',
    "-m timeit computed": 'subprocess.run([sys.executable, "-m", "timeit", statement])\n',
    "-m pdb -c": 'subprocess.run([sys.executable, "-m", "pdb", "-c", "continue", "src/model_io.py"])\n',
    "-m doctest a path": 'subprocess.run([sys.executable, "-m", "doctest", "data/evil.py"])\n',
    "-I -m cProfile a path": (
        'subprocess.run([sys.executable, "-I", "-m", "cProfile", "data/evil.py"])\n'
    ),
    "-m code": 'subprocess.run([sys.executable, "-m", "code"], input=text)\n',
    "-m runpy a computed path": "subprocess.run([sys.executable, '-m', 'runpy', path])\n",
    "-mrunpy joined": 'subprocess.run([sys.executable, "-mrunpy", "data/evil.py"])\n',
    # 2. options that import or read code
    "-W a category from a module": (
        'subprocess.run([sys.executable, "-W", "error::data.evil.W", "-c", "pass"])\n'
    ),
    "-W joined": 'subprocess.run([sys.executable, "-Werror::data.evil.W", "-c", "pass"])\n',
    "-X pycache_prefix": (
        'subprocess.run([sys.executable, "-X", "pycache_prefix=data", "src/model_io.py"])\n'
    ),
    "-X computed": 'subprocess.run([sys.executable, "-X", option, "src/model_io.py"])\n',
    # 3. the working folder first on the child's path
    "cwd= with -m": 'subprocess.run([sys.executable, "-m", "evil"], cwd="data")\n',
    "cwd= with -c import": 'subprocess.run([sys.executable, "-c", "import evil"], cwd="data")\n',
    "cwd= computed with -m": 'subprocess.run(["python3", "-m", "evil"], cwd=folder)\n',
    "cwd= with a relative script": 'subprocess.run([sys.executable, "src/model_io.py"], cwd="data")\n',
    "cd in a shell string": 'os.system("cd data && python3 -m evil")\n',
    "cd then a relative script": 'os.system("cd /tmp && python3 -c pass; python3 src/model_io.py")\n',
    # 3b. found reviewing this change as an attacker: a wrapper's own arguments before Python
    "timeout 5s": 'subprocess.run(["timeout", "5s", "python3", "data/evil.py"])\n',
    "sudo -u": 'subprocess.run(["sudo", "-u", "nobody", "python3", "data/evil.py"])\n',
    "env -C": 'subprocess.run(["env", "-C", "data", "python3", "-m", "evil"])\n',
    "env --chdir=": 'subprocess.run(["env", "--chdir=data", "python3", "-m", "evil"])\n',
    "pushd in a shell string": 'os.system("pushd data; python3 -m evil")\n',
    # 4. spawn variants
    "os.spawnlp": 'os.spawnlp(os.P_WAIT, "python3", "python3", "data/evil.py")\n',
    "os.spawnlpe": 'os.spawnlpe(os.P_WAIT, "python3", "python3", "data/evil.py", env)\n',
    "os.posix_spawnp": 'os.posix_spawnp("python3", ["python3", "data/evil.py"], {})\n',
    # 5. asyncio's event loop
    "loop.subprocess_exec": (
        "async def go(loop):\n"
        '    await loop.subprocess_exec(Proto, sys.executable, "data/evil.py")\n'
    ),
    "get_running_loop().subprocess_exec": (
        "async def go():\n    loop = asyncio.get_running_loop()\n"
        "    await loop.subprocess_exec(Proto, sys.executable, path)\n"
    ),
    "loop.subprocess_shell": (
        'async def go(loop):\n    await loop.subprocess_shell(Proto, "python3 data/evil.py")\n'
    ),
    "asyncio.create_subprocess_exec": (
        'asyncio.create_subprocess_exec(sys.executable, "data/evil.py")\n'
    ),
    "asyncio.create_subprocess_shell": 'asyncio.create_subprocess_shell("python3 " + path)\n',
    # 6. sys.executable under other spellings
    "f-string": 'subprocess.run([f"{sys.executable}", "data/evil.py"])\n',
    "sys.executable + ''": 'subprocess.run([sys.executable + "", "data/evil.py"])\n',
    "os.fsencode": 'subprocess.run([os.fsencode(sys.executable), "data/evil.py"])\n',
    "vars(sys)[...]": 'subprocess.run([vars(sys)["executable"], "data/evil.py"])\n',
    "sys.__dict__[...]": 'subprocess.run([sys.__dict__["executable"], "data/evil.py"])\n',
    "a lambda": 'exe = lambda: sys.executable\nsubprocess.run([exe(), "data/evil.py"])\n',
    "a function": (
        'def exe():\n    return sys.executable\nsubprocess.run([exe(), "data/evil.py"])\n'
    ),
}

# Code given to a child read as code, as ``-c`` code is (each passed before: red): an import of
# code no scan reads is SAST102, code computed at run time SAST104.
READ_AS_CODE = {
    "-m timeit -s": (
        'subprocess.run([sys.executable, "-m", "timeit", "-s", "import data.evil", "1"])\n',
        "SAST102",
    ),
    "-m timeit a statement": (
        'subprocess.run([sys.executable, "-m", "timeit", "import data.evil"])\n',
        "SAST102",
    ),
    "loop.subprocess_exec -c computed": (
        'async def go(loop):\n    await loop.subprocess_exec(Proto, sys.executable, "-c", code)\n',
        "SAST104",
    ),
}

# What stays allowed (each passes, before and after).
ALLOWED = {
    # (sast107d: -m pytest imports conftest.py and the tree's plugins: test_sast107_gaps.py)
    "-m an installed tool": 'subprocess.run([sys.executable, "-m", "ruff", "-q"])\n',
    "-m runpy a scanned file": (
        'subprocess.run([sys.executable, "-m", "runpy", "src/model_io.py"])\n'
    ),
    "-m cProfile a scanned file": (
        'subprocess.run([sys.executable, "-m", "cProfile", "-o", "out", "src/model_io.py"])\n'
    ),
    "-W a built-in category": (
        'subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "src/model_io.py"])\n'
    ),
    "-W ignore": 'subprocess.run([sys.executable, "-W", "ignore", "src/model_io.py"])\n',
    "-X dev": 'subprocess.run([sys.executable, "-X", "dev", "src/model_io.py"])\n',
    "cwd= with -I -m": 'subprocess.run([sys.executable, "-I", "-m", "ruff"], cwd=folder)\n',
    "cwd= a scanned folder with -m": 'subprocess.run([sys.executable, "-m", "model_io"], cwd="src")\n',
    "-m timeit a literal statement": 'subprocess.run([sys.executable, "-m", "timeit", "1 + 1"])\n',
    "cwd= with a scanned file": 'subprocess.run([sys.executable, "src/model_io.py"], cwd=".")\n',
    "env -C a scanned folder": 'subprocess.run(["env", "-C", "src", "python3", "-m", "model_io"])\n',
    "cwd= with another program": 'subprocess.run(["git", "status"], cwd=folder)\n',
    "an f-string command string, added to (numpy's f2py tests)": (
        'import shlex\ncmd = f"{sys.executable} -c \\"print(1)"\ncmd += "\\""\n'
        "subprocess.run(shlex.split(cmd))\n"
    ),
    "a function returning itself, in a tuple (numpy's arrayprint)": (
        "def edges(a, n):\n    if n:\n        return join((edges(a, n - 1), edges(a, n)))\n"
        "    return edges(a, n - 1)\n"
    ),
    "loop.subprocess_exec of another program": (
        'async def go(loop):\n    await loop.subprocess_exec(Proto, "git", "status")\n'
    ),
}


def _scan(root: Path, source: str) -> list[UnsafeLoad]:
    """The scanned file ``src/model_io.py`` in a project whose ``data/`` no scan reads."""
    (root / "src").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "evil.py").write_text("class W(Warning):\n    pass\n", encoding="utf-8")
    (root / "src" / "model_io.py").write_text(HEAD + source, encoding="utf-8")
    return scan([root / "src" / "model_io.py"], root=root, allowed=[])


@pytest.mark.parametrize("plant", list(PLANTED))
def test_each_bypass_is_sast107(tmp_path: Path, plant: str) -> None:
    found = _scan(tmp_path, PLANTED[plant])
    assert "SAST107" in {f.rule for f in found}, found


@pytest.mark.parametrize("plant", list(READ_AS_CODE))
def test_code_given_to_a_child_is_read_as_code(tmp_path: Path, plant: str) -> None:
    source, rule = READ_AS_CODE[plant]
    assert rule in {f.rule for f in _scan(tmp_path, source)}


@pytest.mark.parametrize("plant", list(ALLOWED))
def test_what_a_project_does_passes(tmp_path: Path, plant: str) -> None:
    assert _scan(tmp_path, ALLOWED[plant]) == []
