"""python-tuf doing the same job as `sealwright add` + `publish` (for scripts/bench).

Hashes every file (sha256, as our publisher), builds targets metadata with python-tuf's Metadata API,
signs targets, snapshot and timestamp with Ed25519, writes consistent-snapshot files.
"""
import os
import sys
from datetime import datetime, timedelta, timezone

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import MetaFile, Metadata, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

src, out = sys.argv[1], sys.argv[2]
os.makedirs(os.path.join(out, "metadata"), exist_ok=True)
expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=30)
signer = CryptoSigner.generate_ed25519()
targets = Metadata(Targets(expires=expires))
for dirpath, _, names in os.walk(src):
    for name in sorted(names):
        path = os.path.join(dirpath, name)
        rel = "bench/1.0.0/" + os.path.relpath(path, src)
        targets.signed.targets[rel] = TargetFile.from_file(rel, path, ["sha256"])
targets.sign(signer)
ser = JSONSerializer(compact=True)
targets.to_file(os.path.join(out, "metadata", "1.targets.json"), ser)
snapshot = Metadata(Snapshot(expires=expires))
snapshot.signed.meta["targets.json"] = MetaFile(version=1)
snapshot.sign(signer)
snapshot.to_file(os.path.join(out, "metadata", "1.snapshot.json"), ser)
timestamp = Metadata(Timestamp(expires=expires))
timestamp.sign(signer)
timestamp.to_file(os.path.join(out, "metadata", "timestamp.json"), ser)
