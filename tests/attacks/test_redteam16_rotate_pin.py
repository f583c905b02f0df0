"""Red team 16: ``registry rotate`` without a pinned head re-signs a line the storage appended.

``rotate`` re-signs an old-key version only when the audit log recorded its envelope, and with
``$GATES_REGISTRY_HEAD`` only the lines up to the pin count (row 116). The log's hash chain is
not keyed: without ``[roles]`` a promote line needs no signature, so without the pin whoever
writes the registry's storage and holds the leaked old key (the usual reason to rotate) plants
a version, appends its promote line, and the rotation re-signs it under the new key. docs/keys.md
says so ("Without a pin, that line would count: run rotate with the pin") but the command runs
anyway: fail open. The pin is in the deploy job's environment, where the rotation runs.

Found, not fixed here: refusing ``rotate`` without a pin changes every rotation test's set-up
(tests/gates/test_rotate.py, tests/attacks/test_key_rotation.py and the shared fixtures in
tests/conftest.py run it unpinned), which this red team does not own. Strict xfail: it passes,
and so fails the suite, once ``rotate`` refuses to run unpinned.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.attacks.test_key_rotation import ENVELOPE, _append, _resign, _rotate


@pytest.mark.xfail(
    strict=True,
    reason="registry rotate trusts every audit-log line when $GATES_REGISTRY_HEAD is unset "
    "(documented in docs/keys.md; fix belongs with the rotation's owner: refuse unpinned)",
)
def test_without_a_pin_rotate_refuses_rather_than_trust_an_appended_line(
    plain, capsys, monkeypatch
):
    from pipeline.fsio import sha256_bytes

    project = plain.project
    monkeypatch.delenv("GATES_REGISTRY_HEAD", raising=False)
    v3 = project.versions[-1]
    planted = f"{v3.rsplit('-', 1)[0]}-p-{v3.rsplit('-', 1)[1]}"
    folder = project.root / "registry/versions" / planted
    shutil.copytree(project.root / "registry/versions" / v3, folder)
    _resign(folder / ENVELOPE, plain.old_pem, run_id=f"{v3.rsplit('-', 1)[0]}-p")
    planted_bytes = (folder / ENVELOPE).read_bytes()
    _append(
        project,
        {
            "action": "promote",
            "version": planted,
            "bundle": "artifacts",
            "envelope_sha256": sha256_bytes(planted_bytes),
        },
    )
    code, out = _rotate(plain, monkeypatch, capsys)
    # Today: exit 0, the planted version re-signed under the new key (laundered).
    assert (folder / ENVELOPE).read_bytes() == planted_bytes, "laundered under the new key"
    assert code != 0
    assert "GATES_REGISTRY_HEAD" in out
    assert json.loads(planted_bytes)  # the planted envelope is still the old key's
