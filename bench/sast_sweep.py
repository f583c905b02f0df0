"""Sweep the SAST rule (gates/unsafe_load.py) over a tree of real code: one command.

    nice -n 10 python bench/sast_sweep.py [ROOT ...]   (default: this interpreter's site-packages)

Each file is scanned alone (as ``scan_source`` does), stage by stage, so an error is charged to
the stage that raised it: ``parse`` (Python's own ``ast.parse``), ``bind`` (the scope analysis)
or ``check`` (the rules). Prints files scanned, findings per rule, errors per stage and kind,
the deepest frame of each RecursionError, and the time taken. ``--show RULE`` prints that
rule's findings (file:line and message), to weigh false positives by eye.
"""

from __future__ import annotations

import argparse
import ast
import collections
import sys
import sysconfig
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gates.unsafe_load import _Checker, _Module, _module_name, _Project


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("roots", nargs="*", type=Path)
    parser.add_argument("--show", action="append", default=[], help="print this rule's findings")
    options = parser.parse_args()
    roots = options.roots or [Path(sysconfig.get_paths()["purelib"])]
    files = sorted(f for root in roots for f in root.rglob("*.py") if f.is_file())
    rules: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[tuple[str, str]] = collections.Counter()
    frames: collections.Counter[str] = collections.Counter()
    shown: list[str] = []
    start = time.perf_counter()
    for file in files:
        stage = "parse"
        try:
            tree = ast.parse(file.read_bytes(), filename=str(file))
            stage = "bind"
            root = next(r for r in roots if file.is_relative_to(r))
            name, package = _module_name(file, root)  # settings* modules are judged by name
            module = _Module(tree, path=str(file), name=name, package=package, project=_Project())
            module.project.add(module)
            stage = "check"
            found = _Checker(module).check()
        except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError) as err:
            errors[stage, type(err).__name__] += 1
            if isinstance(err, RecursionError):
                frame = traceback.extract_tb(err.__traceback__)[-1]
                frames[f"{stage}: {frame.name} ({Path(frame.filename).name}:{frame.lineno})"] += 1
                shown.append(f"  {stage}: {file}")
            continue
        for finding in found:
            rules[finding.rule] += 1
            if finding.rule in options.show:
                print(f"{finding.rule} {file}:{finding.line}: {finding.message[:160]}")
    elapsed = time.perf_counter() - start
    print(f"files scanned: {len(files)} under {', '.join(map(str, roots))}")
    print(f"time: {elapsed:.1f} s")
    print(
        "findings per rule: " + (", ".join(f"{r} {n}" for r, n in sorted(rules.items())) or "none")
    )
    print(
        "errors: " + (", ".join(f"{s}/{k} {n}" for (s, k), n in sorted(errors.items())) or "none")
    )
    for frame, count in frames.most_common():
        print(f"  RecursionError deepest frame: {frame} x{count}")
    print("\n".join(shown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
