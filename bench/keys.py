"""Issue 20 figures: signature sizes and times per algorithm, and AES-256-GCM throughput at rest
beside ``openssl enc -aes-256-ctr`` on the same file in the same run.

    python bench/keys.py [--mib 1024]

Prints a Markdown table per measurement (copied into docs/keys.md and docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pipeline.signing import SigningKey, new_private_key, pae

# A statement of the size the artifacts gate signs (about 10 KiB of JSON).
MESSAGE = pae("application/vnd.in-toto+json", b"x" * 10_000)


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def signatures() -> None:
    print("| algorithm | public key (DER SPKI) | signature | sign | verify |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for algorithm in ("ed25519", "ecdsa-p256-sha256", "ml-dsa-65"):
        key = SigningKey(key=new_private_key(algorithm), source="bench", release=True)  # type: ignore[arg-type]
        public = key.public
        der = public.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signature = key.sign(MESSAGE)
        sign = _best(lambda key=key: key.sign(MESSAGE), 200)
        verify = _best(lambda p=public, s=signature: p.verifies(s, MESSAGE), 200)
        print(
            f"| {algorithm} | {len(der)} B | {len(signature)} B | {sign * 1e6:.0f} µs | "
            f"{verify * 1e6:.0f} µs |"
        )


def throughput(mib: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="keys-bench-"))
    plain = folder / "plain.bin"
    chunk = os.urandom(1 << 20)
    with plain.open("wb") as handle:
        for _ in range(mib):
            handle.write(chunk)
    size = mib * (1 << 20)
    key, nonce = AESGCM.generate_key(bit_length=256), os.urandom(12)
    data = plain.read_bytes()
    # Wall and CPU time both: on a shared machine the wall clock mostly measures the neighbours.
    wall, cpu = time.perf_counter(), time.process_time()
    sealed = AESGCM(key).encrypt(nonce, data, b"path+digest")
    enc = (time.perf_counter() - wall, time.process_time() - cpu)
    wall, cpu = time.perf_counter(), time.process_time()
    AESGCM(key).decrypt(nonce, sealed, b"path+digest")
    dec = (time.perf_counter() - wall, time.process_time() - cpu)
    del sealed, data
    hexkey, iv = os.urandom(32).hex(), os.urandom(16).hex()
    out = folder / "openssl.bin"
    timings = []
    for args in (["-e"], ["-d"]):
        src = plain if args == ["-e"] else out
        dst = out if args == ["-e"] else folder / "back.bin"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        subprocess.run(
            [  # noqa: S607 - the openssl on PATH is the one compared against
                "openssl",
                "enc",
                "-aes-256-ctr",
                *args,
                "-K",
                hexkey,
                "-iv",
                iv,
                "-in",
                str(src),
                "-out",
                str(dst),
            ],
            check=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        timings.append((time.perf_counter() - wall, cpu_used))

    def rate(seconds: float) -> str:
        return f"{size / seconds / (1 << 20):.0f} MiB/s"

    print(
        f"| {mib} MiB | AES-256-GCM, cryptography (wall / CPU) | "
        "openssl enc -aes-256-ctr (wall / CPU) | ratio wall / CPU |"
    )
    print("| --- | ---: | ---: | ---: |")
    for name, ours, theirs in (("encrypt", enc, timings[0]), ("decrypt", dec, timings[1])):
        print(
            f"| {name} | {rate(ours[0])} / {rate(ours[1])} | {rate(theirs[0])} / "
            f"{rate(theirs[1])} | {theirs[0] / ours[0]:.2f}x / {theirs[1] / ours[1]:.2f}x |"
        )
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    signatures()
    print()
    throughput(args.mib)


if __name__ == "__main__":
    main()
