"""Every rule id the gates can report is written where a user looks it up.

A user who meets a finding (``DATA070``, ``SERVE004``, ``FBQ011``, ...) greps README.md's gates
table and docs/*.md for it. These tests find every rule id the code can emit and grep for it
the same way.

How codes are found: a regex over the text of every ``.py`` file under ``gates/`` and
``pipeline/`` for a quoted literal of two or more capital letters and three digits
(``"DATA070"``, ``'GATE000'``), which is how every finding's rule is written today:
``Finding("CV010", ...)``, ``rule="SAST011"``, ``RULE = "GATE000"``, ``Problem("FBQ020", ...)``,
``("RISK011", ...)`` tuples and conditional expressions alike. ``SHA256`` and the like match
the pattern without being rule ids; they are listed in ``NOT_RULES``.

What it cannot see: a rule id built at run time (``f"DATA{n:03d}"``, ``"FB" + "110"``), which
no module does today (if one ever does, list the ids it can build in ``BUILT_AT_RUN_TIME``);
and the tools' own ids the gates pass on unchanged (ruff's ``F401``, bandit's ``B602`` and its
fallback ``B000``), which their own documentation covers.

Documented means written out in full, as a grep for it finds it: ``DATA010/011`` does not
document ``DATA011``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from tests.conftest import REPO

QUOTED_CODE = re.compile(r"""["']([A-Z]{2,}[0-9]{3})["']""")
WRITTEN_CODE = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2,}[0-9]{3})(?![0-9])")
NOT_RULES = frozenset({"SHA256"})
BUILT_AT_RUN_TIME: frozenset[str] = frozenset()


@cache
def emitted_codes(root: Path = REPO) -> dict[str, list[str]]:
    """Each rule id the source under gates/ and pipeline/ can emit, with the files it is in."""
    found: dict[str, list[str]] = {code: ["(built at run time)"] for code in BUILT_AT_RUN_TIME}
    for package in ("gates", "pipeline"):
        for path in sorted((root / package).rglob("*.py")):
            for code in set(QUOTED_CODE.findall(path.read_text(encoding="utf-8"))) - NOT_RULES:
                found.setdefault(code, []).append(path.relative_to(root).as_posix())
    return found


def written(text: str) -> set[str]:
    """The rule ids ``text`` writes out in full (a whole word each)."""
    return set(WRITTEN_CODE.findall(text))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def gates_table(readme: str) -> str:
    """The "## The gates" section of README.md."""
    start = readme.index("\n## The gates\n")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def test_the_collection_finds_the_rule_ids_of_every_gate() -> None:
    # Guards the regex: a pattern that found nothing would let the tests below pass on nothing.
    codes = emitted_codes()
    prefixes = {re.sub(r"[0-9]+$", "", code) for code in codes}
    assert {"LINT", "SAST", "AUD", "DATA", "CV", "RISK", "SERVE", "ART", "GATE", "FB"} <= prefixes
    assert {"GATE000", "SAST100", "FBQ020", "SERVE010", "DATA070"} <= codes.keys()
    assert len(codes) > 100


def test_every_rule_id_the_code_emits_is_in_the_readme_or_the_docs() -> None:
    found = written(read(REPO / "README.md"))
    for path in sorted((REPO / "docs").glob("*.md")):
        found |= written(read(path))
    missing = {code: files for code, files in sorted(emitted_codes().items()) if code not in found}
    assert not missing, f"rule ids in neither README.md nor docs/*.md: {missing}"


def test_every_rule_id_the_code_emits_is_in_the_readme_gates_table() -> None:
    found = written(gates_table(read(REPO / "README.md")))
    missing = {code: files for code, files in sorted(emitted_codes().items()) if code not in found}
    assert not missing, f"rule ids missing from README.md's gates table: {missing}"


def test_every_gates_doc_lists_the_rule_ids_of_its_gate() -> None:
    # The doc that covers a prefix's gate, where a user reading about that gate looks.
    doc_of = {
        "LINT": "supply-chain.md",
        "SAST": "supply-chain.md",
        "AUD": "supply-chain.md",
        "DATA": "data-defence.md",
        "RISK": "model-risk.md",
        "SERVE": "serving.md",
        "ART": "trust-model.md",
        "CV": "trust-model.md",
        "GATE": "ci.md",
        "FB": "feedback.md",
        "FBQ": "feedback.md",
    }
    found = {doc: written(read(REPO / "docs" / doc)) for doc in set(doc_of.values())}
    missing: dict[str, str] = {}
    for code in sorted(emitted_codes()):
        doc = doc_of.get(re.sub(r"[0-9]+$", "", code))
        assert doc is not None, f"{code}: this test names no doc for its prefix"
        if code not in found[doc]:
            missing[code] = f"docs/{doc}"
    assert not missing, f"rule ids missing from their gate's doc: {missing}"


def test_only_the_whole_code_counts_as_written() -> None:
    assert written("DATA010/011 missing/undeclared") == {"DATA010"}
    assert written("RISK010-012, FB1101, DATA01") == {"RISK010"}
    assert written("XAUD001") == {"XAUD001"}  # not AUD001
    assert written("(`GATE000`), FBQ020: SERVE010.") == {"GATE000", "FBQ020", "SERVE010"}


def test_the_collection_reads_each_way_a_rule_is_written(tmp_path: Path) -> None:
    (tmp_path / "gates" / "feedback").mkdir(parents=True)
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "gates" / "feedback" / "x.py").write_text(
        'RULE = "XYZ001"\n'
        "Finding('XYZ002', 'message')\n"
        'rule = "XYZ003" if bare else "XYZ004"\n'
        'checks = (("XYZ005", "mean"),)\n'
        '"""XYZ006 in a docstring is prose, not a rule written"""\n'
        'digest = "SHA256"\n',
        encoding="utf-8",
    )
    (tmp_path / "pipeline" / "y.py").write_text('Violation(rule="XYZ007")\n', encoding="utf-8")
    assert set(emitted_codes(tmp_path)) == {f"XYZ00{n}" for n in (1, 2, 3, 4, 5, 7)}
