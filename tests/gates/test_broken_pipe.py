"""A reader that leaves early (``python -m gates data approve | head -1``) gets no traceback.

Found by review19: the files were written, then the next line of output raised
``BrokenPipeError`` and Python printed its traceback. Now the command exits 1 (never 0: the
run's output was not all delivered) and says nothing on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_closed_stdout_is_no_traceback() -> None:
    read, write = os.pipe()
    os.close(read)  # every write to the pipe now fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gates", "list"],
            cwd=REPO,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr == "", done.stderr
