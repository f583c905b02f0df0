"""Red team 16: ``registry rotate`` without a pinned head re-signs a line the storage appended.

``rotate`` re-signs an old-key version only when the audit log recorded its envelope, and with
``$GATES_REGISTRY_HEAD`` only the lines up to the pin count (row 116). The log's hash chain is
not keyed: without ``[roles]`` a promote line needs no signature, so without the pin whoever
writes the registry's storage and holds the leaked old key (the usual reason to rotate) plants
a version, appends its promote line, and the rotation re-signs it under the new key. docs/keys.md
says so ("Without a pin, that line would count: run rotate with the pin") but the command runs
anyway: fail open. The pin is in the deploy job's environment, where the rotation runs.

Fixed by the lead: ``rotate`` refuses to run without the pin (exit 1, naming the variable);
the deploy job sets it. Red before: exit 0 and the planted version re-signed.
"""

from __future__ import annotations

import json

from tests.attacks.test_key_rotation import ENVELOPE, plant_promoted
from tests.rollback_support import run_cli
from tests.rotate_support import deploy_env


def test_without_a_pin_rotate_refuses_rather_than_trust_an_appended_line(
    plain, capsys, monkeypatch
):
    project = plain.project
    _, folder, planted_bytes = plant_promoted(plain)
    deploy_env(monkeypatch, plain)
    monkeypatch.delenv("GATES_REGISTRY_HEAD")
    code, out = run_cli(project, monkeypatch, capsys, "registry", "rotate")
    assert (folder / ENVELOPE).read_bytes() == planted_bytes, "laundered under the new key"
    assert code != 0
    assert "GATES_REGISTRY_HEAD" in out
    assert json.loads(planted_bytes)  # the planted envelope is still the old key's
