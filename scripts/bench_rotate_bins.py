"""Time to re-sign 4096 succinct hash bins after their key is rotated (scripts/bench keys).

Ours: a repository whose targets live in 2^12 succinct bins (TAP 15), one small target per
bin on average; `sealwright key rotate bins` generates the bins' new key and publishes — every
bin re-signed, targets (which names the key), snapshot and timestamp — timed whole,
process start included. Peer: python-tuf's Metadata API re-signing the same 4096 bin
documents (the same targets in each) with a new Ed25519 key and writing them, in this process
(no snapshot, no process start: a lower bound for what a python-tuf publisher does).

usage: bench_rotate_bins.py SEALWRIGHT WORKDIR [TARGETS]
"""
import hashlib
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, SuccinctRoles, TargetFile, Targets
from tuf.api.serialization.json import JSONSerializer

BITS = 12


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def main():
    sealwright, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 4096
    repo = os.path.join(work, "bins-repo")
    files = os.path.join(work, "bins-files")
    os.makedirs(files, exist_ok=True)
    for i in range(n):
        with open(os.path.join(files, f"f{i:06}.bin"), "wb") as f:
            f.write(f"target {i}".encode())
    run(sealwright, "init", repo)
    run(sealwright, "--repo", repo, "delegate", "bins", "--succinct", str(BITS))
    run(sealwright, "--repo", repo, "add", files, "--name", "app", "--version", "1.0.0",
        "--delegation", "bins")
    run(sealwright, "--repo", repo, "publish")
    start = time.perf_counter()
    run(sealwright, "--repo", repo, "key", "rotate", "bins")
    ours = time.perf_counter() - start
    run(sealwright, "--repo", repo, "verify")

    # python-tuf: the same bins, the same targets, re-signed with a new key.
    succinct = SuccinctRoles([], 1, BITS, "bins")
    expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=90)
    bins = {name: Metadata(Targets(expires=expires)) for name in succinct.get_roles()}
    for name in sorted(os.listdir(files)):
        path = f"app/1.0.0/{name}"
        bins[succinct.get_role_for_target(path)].signed.targets[path] = TargetFile.from_file(
            path, os.path.join(files, name), ["sha256"])
    out = os.path.join(work, "python-tuf-bins")
    os.makedirs(out, exist_ok=True)
    ser = JSONSerializer(compact=True)
    signer = CryptoSigner.generate_ed25519()
    start = time.perf_counter()
    for name, md in bins.items():
        md.signatures.clear()
        md.signed.version += 1
        md.sign(signer)
        md.to_file(os.path.join(out, f"{md.signed.version}.{name}.json"), ser)
    peer = time.perf_counter() - start

    print(f"re-signing {len(bins)} succinct bins after their key is rotated ({n} targets)")
    print(f"| {'':<52} | {'seconds':>8} |")
    print(f"|{'-' * 54}|{'-' * 10}|")
    print(f"| {'sealwright key rotate bins (whole publish, process)':<52} | {ours:>8.2f} |")
    print(f"| {'peer: python-tuf re-sign + write (in-process)':<52} | {peer:>8.2f} |")


if __name__ == "__main__":
    main()
