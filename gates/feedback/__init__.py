"""The ``feedback`` stage and its parts: run history, trends, quarantine, reports, metrics.

``FeedbackGate`` is imported lazily so that ``python -m gates history verify`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FeedbackGate"]


def __getattr__(name: str) -> Any:
    """Import ``FeedbackGate`` on first use (the registry names ``gates.feedback:FeedbackGate``)."""
    if name == "FeedbackGate":
        from gates.feedback.stage import FeedbackGate  # noqa: PLC0415 - lazy by design

        return FeedbackGate
    msg = f"module 'gates.feedback' has no attribute {name!r}"
    raise AttributeError(msg)
