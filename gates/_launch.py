"""Start a supply-chain tool from the gates' environment, never from the project's tree.

``gates._tools.run_module`` runs this file as a script, in isolated mode::

    python -I gates/_launch.py PROJECT_ROOT MODULE ARGS...

Isolated mode (``-I``) already keeps the tree out of the tool's ``sys.path``: it ignores every
``PYTHON*`` variable (``PYTHONPATH``, ``PYTHONSTARTUP``, ``PYTHONHOME``, ...), leaves out the
user site folder (its ``.pth`` files and ``usercustomize``) and puts neither the working folder
nor this script's folder on ``sys.path``. What can still reach the path is what the
interpreter's own site folders add: a ``.pth`` line naming a folder in the tree (an editable
install, say), from which a ``bandit.py`` or a ``sitecustomize.py`` would then be imported.
So before the tool runs, this script looks up where its module and the start-up hooks Python
imported (``sitecustomize``, ``usercustomize``) come from, and refuses to go on (exit 126,
one line on stderr naming the file) when one of them lies inside the project but outside the
environment's own site-packages. Then it runs the module as ``python -m`` does, through
``runpy.run_module``. Standard library only, and nothing imported from the tree.
"""

from __future__ import annotations

import importlib.util
import os
import runpy
import site
import sys
import sysconfig

REFUSED = 126
MARKER = "gates-launch: refused:"


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _trusted_folders() -> list[str]:
    """The environment's own site-packages folders, where the tools are installed."""
    folders = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    folders.update(site.getsitepackages())
    return sorted(os.path.realpath(f) for f in folders if f)


def _from_the_tree(origin: str | None, root: str, trusted: list[str]) -> bool:
    if not origin:
        return False
    where = os.path.realpath(origin)
    return _inside(where, root) and not any(_inside(where, t) for t in trusted)


def main(argv: list[str]) -> None:
    """Check where ``MODULE`` and the start-up hooks come from, then run ``MODULE``."""
    if len(argv) < 3:  # script, root, module
        sys.exit("usage: python -I _launch.py PROJECT_ROOT MODULE [ARGS...]")
    root, module, args = os.path.realpath(argv[1]), argv[2], argv[3:]
    trusted = _trusted_folders()
    for hook in ("sitecustomize", "usercustomize"):
        loaded = sys.modules.get(hook)
        origin = getattr(loaded, "__file__", None)
        if _from_the_tree(origin, root, trusted):
            print(
                f"{MARKER} {origin}: Python imported this {hook} from inside the project "
                f"{root} before {module} could start",
                file=sys.stderr,
            )
            sys.exit(REFUSED)
    spec = importlib.util.find_spec(module)
    if spec is None:
        print(f"No module named {module}", file=sys.stderr)
        sys.exit(1)
    # A package is looked up in its folders too: a namespace package has no origin at all.
    for origin in (spec.origin, *(spec.submodule_search_locations or ())):
        if _from_the_tree(origin, root, trusted):
            print(
                f"{MARKER} {origin}: '{module}' would be imported from inside the project "
                f"{root}, not from the environment's site-packages ({', '.join(trusted)})",
                file=sys.stderr,
            )
            sys.exit(REFUSED)
    sys.argv = [argv[0], *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv)
