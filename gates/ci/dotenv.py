"""The dotenv file a CI job exports after the verdict: the verdict and the model's digest."""

from __future__ import annotations

import os
from pathlib import Path

from gates.ci.interface import CiError
from gates.closing import read_report_json
from gates.registry import VERDICT

ARTIFACTS_GATE = "artifacts"
MODEL_SUFFIX = ".skops"


def dotenv_lines(reports_dir: Path) -> list[str]:
    """``KEY=value`` lines: GATES_VERDICT always, GATES_MODEL_SHA256 when the manifest names one.

    The verdict is read from ``reports/<verdict>.json``; a missing or unparsable report (not a
    regular file of at most 16 MiB, not JSON, nested past the parser's limit) is written as
    ``GATES_VERDICT=MISSING`` so that a later job cannot mistake it for a pass. A reports folder
    that is missing, not a folder or cannot be listed is a CiError naming it (a mistyped
    ``--reports`` is not a run whose verdict went missing).
    """
    _require_folder(reports_dir)
    verdict = _read(reports_dir / f"{VERDICT.name}.json")
    status = str(verdict.get("status", "MISSING")) if verdict is not None else "MISSING"
    lines = [f"GATES_VERDICT={_safe(status)}"]
    if verdict is not None and "run_id" in verdict:
        lines.append(f"GATES_VERDICT_RUN_ID={_safe(str(verdict['run_id']))}")
    artifacts = _read(reports_dir / f"{ARTIFACTS_GATE}.json")
    listed = artifacts.get("artifacts") if artifacts is not None else None
    digests = {str(k): str(v) for k, v in listed.items()} if isinstance(listed, dict) else {}
    models = sorted(k for k in digests if k.endswith(MODEL_SUFFIX))
    if len(models) == 1:
        lines.append(f"GATES_MODEL_PATH={_safe(models[0])}")
        lines.append(f"GATES_MODEL_SHA256={_safe(digests[models[0]])}")
    return lines


def _require_folder(reports_dir: Path) -> None:
    why = None
    if not reports_dir.is_dir():
        why = "does not exist" if not reports_dir.exists() else "is not a folder"
    else:
        try:
            os.listdir(reports_dir)
        except OSError as err:
            why = f"cannot be read ({err.strerror or err})"
    if why is not None:
        msg = (
            f"{reports_dir}: the reports folder {why}; expected the folder the gates wrote "
            "their reports to (--reports, default reports; [run].reports_dir)"
        )
        raise CiError(msg)


def _read(path: Path) -> dict[str, object] | None:
    try:
        data = read_report_json(path)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _safe(value: str) -> str:
    # A dotenv value is one line of plain text in GitLab's parser; refuse anything else rather
    # than write a line that could set a second variable.
    if not value or any(not (c.isalnum() or c in "-_./:+") for c in value):
        msg = f"refusing to export {value!r} to a dotenv file: expected [A-Za-z0-9-_./:+]+"
        raise CiError(msg)
    return value
