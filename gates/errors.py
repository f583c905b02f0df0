"""One root error for the gates package: everything it raises on purpose is a GatesError.

The pipeline's errors (``pipeline.errors.PipelineError``) stay the pipeline's: a gate that calls
the pipeline lets them through or chains them (``raise ... from err``); the CLI maps both roots
to the same message and exit code.
"""

from __future__ import annotations


class GatesError(Exception):
    """Bad input or a refused operation in the gates, with a message fit to show a person."""


class GateError(GatesError):
    """A gate could not run (missing tool, unparsable output): its result is ERRORED."""
