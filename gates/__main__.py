"""Entry point of ``python -m gates``."""

import gc
import os
import sys

# Small machines: one BLAS/OpenMP thread per process is faster than two for these model sizes
# (1.4-2.1x on 2 cores for LogisticRegression CV, issue 8). Set before anything imports numpy;
# a value the user exported wins.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from pipeline.distmeta import refuse_metadata  # noqa: E402 - standard library only

# Before any library loads its plugins: entry points of metadata planted where python -m runs.
refuse_metadata(sys.path[0])

from gates._cli import main  # noqa: E402 - the thread defaults must precede numpy's import

try:
    code = main()
except BrokenPipeError:
    # The reader left (``data approve | head -1``): what was written stands, no traceback.
    # Python's documented recipe: point stdout at devnull so its flush at exit cannot fail.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    code = 1
# Only the exit is left: spare the teardown its collections over everything loaded (see
# gates.worker.leave_without_final_collection; atexit handlers and threads still run).
gc.freeze()
sys.exit(code)
