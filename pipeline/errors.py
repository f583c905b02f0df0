"""One root error for the ML pipeline; everything it raises on bad input is a PipelineError."""

from __future__ import annotations


class PipelineError(Exception):
    """Bad input or a refused operation, with a message fit to show a person as it is."""


class PolicyError(PipelineError):
    """policy.toml is missing, malformed, or breaks its schema."""


class DataError(PipelineError):
    """A data file is missing, unreadable, off its lock, or breaks its contract."""


class ModelError(PipelineError):
    """A model file is missing, does not match its manifest, or holds untrusted types."""
