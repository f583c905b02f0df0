"""A child process for the promotion race test: run by path (``python tests/promotion_race_child.py
ROOT``), it verifies the signed project at ROOT once, then obeys lines on stdin:

- ``prepare REGISTRY``: read the champion pointer's state, as a deploy does when it starts; print ``ready``
- ``go``: promote with that expected state; print ``ok VERSION`` or ``refused MESSAGE``
- ``quit``
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.attestation import ENVELOPE_FILE, verify_bundle
from pipeline.champion import ModelRegistry, RegistryError
from pipeline.signing import load_public_key

REQUIRED = ("data", "train", "cv")


def main() -> None:
    root = Path(sys.argv[1])
    trusted = load_public_key(root / "keys/release.pub")
    verified = verify_bundle(
        root / "artifacts" / ENVELOPE_FILE, root=root, trusted=trusted, required_gates=REQUIRED
    )
    registry: ModelRegistry | None = None
    state = ""
    print("started", flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "prepare":
            registry = ModelRegistry(Path(arg), trusted=trusted, required_gates=REQUIRED)
            state = registry.pointer_state()
            print("ready", flush=True)
        elif command == "go" and registry is not None:
            try:
                champion = registry.promote(verified, expect_state=state)
            except RegistryError as err:
                print("refused " + str(err).replace("\n", " "), flush=True)
            else:
                print("ok " + champion.version, flush=True)
        elif command == "quit":
            return


if __name__ == "__main__":
    main()
