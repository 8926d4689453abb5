#!/usr/bin/env python3
"""Reference canonical JSON encodings from securesystemslib.

Usage:
    canonical.py FILE                  encode each document of FILE
    canonical.py --expect-reject FILE  list the documents that are refused

FILE holds a JSON array of documents (parsed with json.load).

Default mode prints a JSON array with one lowercase hex string per document:
the UTF-8 bytes of securesystemslib.formats.encode_canonical(doc), i.e. exactly
the bytes python-tuf signs (tuf.api.serialization.json.CanonicalJSONSerializer).
Exit 0; exit 1 (with the index and error on stderr) if any document is refused.

--expect-reject prints {"rejected": [indexes], "accepted": [indexes]} for the
documents where encode_canonical(doc).encode("utf-8") raises / succeeds, with
the reason for each rejection on stderr. Exit 0 when every document was
rejected, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys

from securesystemslib.formats import encode_canonical


def canonical_bytes(doc: object) -> bytes:
    # Same two steps as python-tuf's CanonicalJSONSerializer.serialize().
    text = encode_canonical(doc)
    assert isinstance(text, str)
    return text.encode("utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="JSON array of documents")
    parser.add_argument(
        "--expect-reject",
        action="store_true",
        help="report which documents securesystemslib refuses",
    )
    args = parser.parse_args()

    with open(args.file, encoding="utf-8") as f:
        docs = json.load(f)
    if not isinstance(docs, list):
        print(f"{args.file}: top level must be a JSON array", file=sys.stderr)
        return 2

    if args.expect_reject:
        rejected, accepted = [], []
        for i, doc in enumerate(docs):
            try:
                canonical_bytes(doc)
            except Exception as e:  # noqa: BLE001 - any refusal counts
                rejected.append(i)
                print(f"{i}: rejected: {type(e).__name__}: {e}", file=sys.stderr)
            else:
                accepted.append(i)
                print(f"{i}: ACCEPTED (expected a rejection)", file=sys.stderr)
        json.dump({"rejected": rejected, "accepted": accepted}, sys.stdout)
        sys.stdout.write("\n")
        return 0 if not accepted else 1

    out = []
    for i, doc in enumerate(docs):
        try:
            out.append(canonical_bytes(doc).hex())
        except Exception as e:  # noqa: BLE001
            print(f"{i}: cannot encode: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
    json.dump(out, sys.stdout, indent=0)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
