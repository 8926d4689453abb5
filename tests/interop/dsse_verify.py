"""Verifies a Sealwright DSSE envelope the way other supply-chain tools do
(crates/attest/tests/interop.rs):

- securesystemslib's `dsse.Envelope.verify` with the given public keys (PEM) and a
  threshold of all of them;
- the payload type is in-toto's;
- in-toto-attestation parses the verified payload as a Statement v1 in strict mode (unknown
  fields fail: a lint of what we write) and validates it; an SLSA Provenance v1 predicate is
  parsed strictly too;
- a subject's sha256 equals the artifact's.

Prints one JSON line; exits non-zero on any failure.

usage: dsse_verify.py ENVELOPE ARTIFACT KEY.pem...
"""
import hashlib
import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey


def main():
    env_path, artifact_path, *key_paths = sys.argv[1:]
    envelope = Envelope.from_dict(json.load(open(env_path)))
    keys = [SSlibKey.from_crypto(load_pem_public_key(open(p, "rb").read())) for p in key_paths]
    accepted = envelope.verify(keys, threshold=len(keys))
    if envelope.payload_type != "application/vnd.in-toto+json":
        raise SystemExit("payload type %r" % envelope.payload_type)
    statement = json_format.Parse(envelope.payload, statement_pb2.Statement())
    Statement.copy_from_pb(statement).validate()
    builder = None
    if statement.predicate_type == "https://slsa.dev/provenance/v1":
        provenance = json_format.ParseDict(
            json_format.MessageToDict(statement.predicate), provenance_pb2.Provenance()
        )
        builder = provenance.run_details.builder.id
    digest = hashlib.sha256(open(artifact_path, "rb").read()).hexdigest()
    if not any(s.digest.get("sha256") == digest for s in statement.subject):
        raise SystemExit("no subject has the artifact's sha256 %s" % digest)
    print(json.dumps({"ok": True, "keyids": sorted(accepted), "predicate_type": statement.predicate_type, "builder": builder}))


main()
