"""Policy gates: an ordered chain of checks a model passes before it may be trusted."""

from pathlib import Path

# The project's own code: every ``.py`` of these two packages is in each cache key, and the warm
# worker restarts when any of them changes (``gates/cache.py``, ``gates/worker.py``).
CODE_PACKAGES = tuple(
    Path(__file__).resolve().parent.parent / name for name in ("gates", "pipeline")
)
