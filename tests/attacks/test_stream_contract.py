"""Planted attacks on the streamed contract check: cells that read like its own messages.

Issue 15 (architecture). The streaming path used to merge each chunk's contract findings by
reading their message text back: which variant of DATA012 or DATA020 a finding was, and where
its "(found ...)" list began. The data is the contributor's, so a cell could be written to look
like that text: a label "have no label" folded an outside-the-classes finding into the blank
one, an id "not whole numbers" folded an unparsable cell into the fractional ones, a label
holding " (found " cut a message in the wrong place. Now each rule keeps its own state from
chunk to chunk and writes its message once, at the end (``pipeline.data.ContractCheck``), so
no text is ever read back. Each case plants such cells in two chunks of the embedded data:
``data approve`` must refuse it (1), name the file and the planted rows, and say exactly the
same on the streaming path (chunks of 100 rows) as in memory.
"""

from __future__ import annotations

import io

import pandas as pd
import pytest

from gates.approve import approve

_CLASSES = "['benign', 'malignant']"

# case -> (cells planted as {row: (column, text)}, lines the refusal must hold)
CASES: dict[str, tuple[dict[int, tuple[str, str]], tuple[str, ...]]] = {
    "label_reads_like_the_blank_label_message": (
        {10: ("diagnosis", ""), 250: ("diagnosis", "have no label")},
        (
            "DATA020 label 'diagnosis': row 10 have no label ([data].classes)",
            f"DATA020 label 'diagnosis': row 250 outside the declared classes {_CLASSES} "
            "(found ['have no label']) ([data].classes)",
        ),
    ),
    "id_reads_like_the_fractional_message": (
        {20: ("id", "not whole numbers"), 300: ("id", "300.5")},
        (
            "DATA012 column 'id': row 20 not int64 (e.g. 'not whole numbers') "
            "([data.columns].id.dtype)",
            "DATA012 column 'id': row 300 not whole numbers (e.g. np.float64(300.5)) "
            "([data.columns].id.dtype)",
        ),
    ),
    "label_holds_the_found_marker": (
        {50: ("diagnosis", "zz (found it"), 400: ("diagnosis", "qq")},
        (
            f"DATA020 label 'diagnosis': 2 rows (first: 50, 400) outside the declared classes "
            f"{_CLASSES} (found ['qq', 'zz (found it']) ([data].classes)",
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cells_that_read_like_messages_are_reported_as_in_memory(project, case):
    cells, lines = CASES[case]
    frame = pd.read_csv(project.data_path, dtype=str, keep_default_na=False)
    for row, (column, text) in cells.items():
        frame.loc[row, column] = text
    frame.to_csv(project.data_path, index=False, lineterminator="\n")
    in_memory = io.StringIO()
    assert approve(project.load(), out=in_memory) == 1
    project.edit_policy(**{"data.stream_above_mb": 0.01, "data.stream_chunk_rows": 100})
    streamed = io.StringIO()
    assert approve(project.load(), out=streamed) == 1
    said = streamed.getvalue().splitlines()
    assert (
        said[0] == f"not approved: {project.data_path} breaks its contract; the lock is unchanged"
    )
    for line in lines:
        assert f"  {line}" in said, (line, said)
    assert said == in_memory.getvalue().splitlines()
