"""The project's own SAST rule: unsafe deserialization outside the one module allowed to load.

bandit flags ``pickle`` but not ``joblib.load``, ``pandas.read_pickle``, ``torch.load`` or a
skops load that trusts whatever the file asks for. Every one of these runs code chosen by whoever
wrote the bytes. Rules:

- SAST101 a call of ``pickle.load/loads``, ``cPickle``, ``_pickle``, ``joblib.load``,
  ``pandas.read_pickle`` (also as a DataFrame/Series method), ``torch.load``, ``numpy.load``
  with ``allow_pickle=True``, ``shelve.open``, ``marshal.load/loads``.
- SAST102 any use of ``dill`` or ``cloudpickle`` loaders (imports included), and a dynamic
  import (``__import__``, ``importlib.import_module``) of a pickle-like module.
- SAST103 ``skops.io.load/loads`` whose ``trusted=`` is computed (a call, a name, a
  comprehension) rather than a literal list/tuple of strings, or ``trusted=True``.
- SAST100 a file that does not parse (it went unchecked).

Aliases are resolved: ``import joblib as jl; jl.load(...)``, ``from pickle import loads``,
``from skops import io as sio``. Only the modules named in ``[sast].loaders`` are exempt.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Fully qualified callables that deserialize arbitrary objects (run code on load).
UNSAFE_CALLS: dict[str, str] = {
    "pickle.load": "SAST101",
    "pickle.loads": "SAST101",
    "pickle.Unpickler": "SAST101",
    "_pickle.load": "SAST101",
    "_pickle.loads": "SAST101",
    "cPickle.load": "SAST101",
    "cPickle.loads": "SAST101",
    "joblib.load": "SAST101",
    "sklearn.externals.joblib.load": "SAST101",
    "pandas.read_pickle": "SAST101",
    "torch.load": "SAST101",
    "shelve.open": "SAST101",
    "marshal.load": "SAST101",
    "marshal.loads": "SAST101",
    "numpy.load": "SAST101",
    "cloudpickle.load": "SAST102",
    "cloudpickle.loads": "SAST102",
}
# Modules any use of which is a finding (their whole purpose is loading arbitrary objects).
BANNED_MODULES = ("dill",)
SKOPS_LOADERS = ("skops.io.load", "skops.io.loads")
# Modules whose dynamic import (``__import__("pickle")``) would dodge the alias tracking.
DYNAMIC_BANNED = ("pickle", "_pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve")
POLICY_KEY = "[sast].loaders"


@dataclass(frozen=True)
class UnsafeLoad:
    """One unsafe deserialization site."""

    rule: str
    path: str
    line: int
    call: str
    message: str


def _literal_strings(node: ast.expr) -> bool:
    return isinstance(node, ast.List | ast.Tuple) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    )


class _Visitor(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.aliases: dict[str, str] = {}
        self.found: list[UnsafeLoad] = []

    def _add(self, rule: str, node: ast.AST, call: str, message: str) -> None:
        line = getattr(node, "lineno", 0)
        self.found.append(UnsafeLoad(rule, self.path, line, call, message))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            local = alias.asname or alias.name.partition(".")[0]
            self.aliases[local] = alias.name if alias.asname else alias.name.partition(".")[0]
            if alias.name.partition(".")[0] in BANNED_MODULES:
                self._add("SAST102", node, alias.name, f"imports {alias.name}")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
        if module.partition(".")[0] in BANNED_MODULES:
            self._add("SAST102", node, module, f"imports from {module}")
        self.generic_visit(node)

    def qualified(self, node: ast.expr) -> str | None:
        """``jl.load`` -> ``joblib.load`` through the recorded aliases; None when not a name."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        head = self.aliases.get(node.id, node.id)
        return ".".join([head, *reversed(parts)])

    def visit_Call(self, node: ast.Call) -> None:
        name = self.qualified(node.func)
        if name is not None:
            self._check_call(node, _normalise(name))
        elif isinstance(node.func, ast.Attribute) and node.func.attr in ("read_pickle",):
            self._add("SAST101", node, node.func.attr, "calls .read_pickle() (unpickles)")
        self.generic_visit(node)

    def _check_call(self, node: ast.Call, name: str) -> None:
        if name in ("__import__", "importlib.import_module") and node.args:
            target = node.args[0]
            module = target.value if isinstance(target, ast.Constant) else None
            if isinstance(module, str) and module in DYNAMIC_BANNED:
                self._add(
                    "SAST102",
                    node,
                    f"{name}({module!r})",
                    f"imports {module} dynamically (hides its loaders from this check)",
                )
            return
        if name.partition(".")[0] in BANNED_MODULES:
            self._add("SAST102", node, name, f"calls {name}() (dill unpickles arbitrary objects)")
            return
        if name == "numpy.load":
            if any(
                k.arg == "allow_pickle"
                and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                for k in node.keywords
            ):
                self._add("SAST101", node, name, "calls numpy.load() with allow_pickle")
            return
        if name in UNSAFE_CALLS:
            self._add(UNSAFE_CALLS[name], node, name, f"calls {name}() (runs code from the file)")
            return
        if name.endswith(".read_pickle"):
            self._add("SAST101", node, name, f"calls {name}() (unpickles)")
            return
        if name in SKOPS_LOADERS:
            trusted = next((k.value for k in node.keywords if k.arg == "trusted"), None)
            if any(k.arg is None for k in node.keywords):
                self._add("SAST103", node, name, f"calls {name}() with **kwargs (trusted unknown)")
            elif trusted is not None and not (
                _literal_strings(trusted)
                or (isinstance(trusted, ast.Constant) and trusted.value in (None, False))
            ):
                self._add(
                    "SAST103",
                    node,
                    name,
                    f"calls {name}() with a computed trusted= list "
                    f"({ast.unparse(trusted)[:60]}): it trusts what the file asks for",
                )


def _normalise(name: str) -> str:
    # scikit-learn once re-exported joblib; the old spelling loads the same way.
    return name.replace("sklearn.externals.joblib.", "joblib.")


def scan_source(source: str, *, path: str) -> list[UnsafeLoad]:
    """Unsafe-load sites in one module's source; SyntaxError propagates to the caller."""
    tree = ast.parse(source, filename=path)
    visitor = _Visitor(path)
    visitor.visit(tree)
    return visitor.found


def scan(files: Sequence[Path], *, root: Path, allowed: Sequence[str]) -> list[UnsafeLoad]:
    """Scan files; the ``allowed`` loader modules are exempt; unparsable files are SAST100."""
    exempt = {(root / a).resolve() for a in allowed}
    found: list[UnsafeLoad] = []
    for file in files:
        shown = _shown(file, root)
        if file.resolve() in exempt:
            continue
        try:
            found.extend(scan_source(file.read_text(encoding="utf-8"), path=shown))
        except (SyntaxError, UnicodeDecodeError, ValueError) as err:
            line = getattr(err, "lineno", None) or 0
            found.append(
                UnsafeLoad("SAST100", shown, line, "", f"cannot parse, so it went unchecked: {err}")
            )
    return found


def _shown(file: Path, root: Path) -> str:
    try:
        return file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return file.as_posix()
