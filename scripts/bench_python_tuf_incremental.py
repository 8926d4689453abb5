"""python-tuf doing what `sealwright add` of one file + `publish` does to an existing
repository (for scripts/bench): load the current targets metadata, add one target, sign it,
write the next targets version, and a new snapshot and timestamp.

The repository is the one bench_python_tuf.py wrote (no hash bins). A fresh Ed25519 key
signs: the cost measured is python-tuf's parse, hash, sign and write, not key storage.
"""
import os
import sys
from datetime import datetime, timedelta, timezone

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import MetaFile, Metadata, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

repo, new_file = sys.argv[1], sys.argv[2]
md_dir = os.path.join(repo, "metadata")
expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=30)
signer = CryptoSigner.generate_ed25519()
ser = JSONSerializer(compact=True)

targets = Metadata[Targets].from_file(os.path.join(md_dir, "1.targets.json"))
rel = "one/1.0.0/" + os.path.basename(new_file)
targets.signed.targets[rel] = TargetFile.from_file(rel, new_file, ["sha256"])
targets.signed.version += 1
targets.signatures.clear()
targets.sign(signer)
targets.to_file(os.path.join(md_dir, "%d.targets.json" % targets.signed.version), ser)
snapshot = Metadata(Snapshot(version=2, expires=expires))
snapshot.signed.meta["targets.json"] = MetaFile(version=targets.signed.version)
snapshot.sign(signer)
snapshot.to_file(os.path.join(md_dir, "2.snapshot.json"), ser)
timestamp = Metadata(Timestamp(version=2, expires=expires))
timestamp.signed.snapshot_meta = MetaFile(version=2)
timestamp.sign(signer)
timestamp.to_file(os.path.join(md_dir, "timestamp.json"), ser)
