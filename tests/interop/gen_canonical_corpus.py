#!/usr/bin/env python3
"""Regenerate canonical_corpus.json and canonical_rejects.json.

Deterministic: running it twice gives the same files. The corpus entries are
written as raw JSON text (not only via json.dumps) so that the input side also
has escapes, raw UTF-8, odd whitespace and unsorted keys. Run with the interop
venv:  .venv/bin/python tests/interop/gen_canonical_corpus.py
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import Metadata, Role, Root

HERE = os.path.dirname(os.path.abspath(__file__))

# A fixed RSA-3072 public key (private half discarded) so the root is stable.
RSA_PUB_PEM = b"""-----BEGIN PUBLIC KEY-----
MIIBojANBgkqhkiG9w0BAQEFAAOCAY8AMIIBigKCAYEAwx4k7ekHCfBwZqFcC7hy
JTzw1tlgasGNqSmnPbz7WNTTLdpYI2/Lg3cxB6/dkAtyHIs91ycXvfcL37G/yp1C
ipQy9DiTrXXuSCnQTzeVdNcgXgzCE5n/4qNEr0F43jYVmEtu1rS5kxrIGeDDUKM+
k6krdAhQ2BoTkkGIImu7erXlyw/hmqQld0CEAFbUvpyik/+/IEytmjPzO5u2bvX9
pQPA2lMQTxU9Upa6u2/WABwHcFp2AdY/2MMY8icdjVyXOOCdK4zQ7Pv4uQuvRJPD
U/89Glh08xUWY+FyIX5sx70SXGxTWt+/2LvA3fHASXTkwjQXgffvsHW9oLnYj8dr
wIajdD5zaHtb5tDzQT4A8jkgnXHviDvx/qBPznaVTta1tdPIehlj+E4deu9Ga95E
tNoemLr2DHZyvKf9pbyzkT8D8xarwWLjIDArSD6o1i34OEjKSsU557LNZKkkbxXo
nIcD4ARvcw13WCAVv+2qpJrLKEmBgHgnQrnqMH3fTcJdAgMBAAE=
-----END PUBLIC KEY-----
"""


def tuf_root() -> dict:
    """A real, signed TUF root (Ed25519 signatures are deterministic)."""
    ed_priv = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    ed_key = SSlibKey.from_crypto(ed_priv.public_key())
    signer = CryptoSigner(ed_priv, ed_key)
    ec_priv = ec.derive_private_key(0x5EA1_4217_C0FF_EE, ec.SECP256R1())
    ec_key = SSlibKey.from_crypto(ec_priv.public_key())
    rsa_key = SSlibKey.from_crypto(load_pem_public_key(RSA_PUB_PEM))

    root = Root(
        version=1,
        expires=datetime(2030, 1, 1, tzinfo=timezone.utc),
        consistent_snapshot=True,
        # explicit (unsorted) order: Root() otherwise iterates a set of role
        # names, which makes the dict order vary between runs
        roles={n: Role([], 1) for n in ("timestamp", "targets", "root", "snapshot")},
    )
    root.add_key(ed_key, "root")
    root.add_key(ec_key, "targets")
    root.add_key(rsa_key, "snapshot")
    root.add_key(ed_key, "timestamp")
    md = Metadata(root)
    md.sign(signer)
    return md.to_dict()


def many_keys() -> dict:
    """200 keys spread over the whole code point range, inserted unsorted."""
    cps = [0x20, 0x7E, 0x7F, 0xE9, 0x3B1, 0x4E2D, 0xD7FF, 0xE000, 0xFB00, 0xFFFD,
           0xFFFF, 0x10000, 0x1F600, 0x1F9D1, 0x10FFFF]
    keys = set()
    x = 12345
    while len(keys) < 200:
        x = (x * 1103515245 + 12345) % (2**31)
        a = cps[x % len(cps)]
        b = cps[(x >> 8) % len(cps)]
        keys.add(chr(a) + chr(b) + str(x % 7))
    return {k: i for i, k in enumerate(sorted(keys, key=lambda s: s.encode("utf-16-be"), reverse=True))}


def deep(depth: int):
    node: object = "bottom"
    for i in range(depth):
        node = [node, i] if i % 2 else {"k" + str(i): node, "z": None}
    return node


def dumps(doc: object, ascii_only: bool = False) -> str:
    # No sort_keys: the canonicaliser must do the sorting.
    return json.dumps(doc, ensure_ascii=ascii_only)


def corpus() -> list[str]:
    entries: list[str] = []
    add = entries.append

    # scalars and empties
    for doc in [{}, [], "", True, False, None, 0, -1, 1, {"": ""}, [[]], [{}], {"a": {}}]:
        add(dumps(doc))
    # integers
    add(dumps([2**63 - 1, -(2**63), 2**53 + 1, -(2**53) - 1, 2**32, 10**18, 7]))
    add(dumps({"max": 2**63 - 1, "min": -(2**63), "zero": 0}))
    # key ordering
    add(dumps({"b": 1, "a": 2, "c": 3}))
    add(dumps({"ab": 1, "a b": 2, "a": 3, "": 4, "b": 5, "aa": 6, "a\u0000": 7}))
    add(dumps({"a": 1, "A": 2, "b": 3, "B": 4, "_": 5, "~": 6, "0": 7, " ": 8}))
    add(dumps({"key with spaces": 1, " leading": 2, "trailing ": 3, "\t": 4}))
    # unicode keys: code point order (= UTF-8 byte order), not UTF-16 order
    add(dumps({"\uffff": 1, "\U0001F600": 2}))
    add(dumps({"\ue000": "private use", "\U0001F600": "emoji", "\ufb00": "ligature"}))
    add(dumps({"\U0001F600": 1, "\uffff": 2}, ascii_only=True))  # surrogate-pair escapes in input
    add(dumps({"é": 1, "e\u0301": 2, "e": 3, "f": 4, "É": 5, "z": 6}))
    add(dumps({"中": 1, "日本": 2, "日": 3, "한국어": 4, "ア": 5, "α": 6, "я": 7}))
    add(dumps({"😀": 1, "🧑‍💻": 2, "\U0010ffff": 3, "\U00010000": 4, "\ud7ff": 5}))
    add(dumps(many_keys()))
    # strings: only " and \ are escaped; everything else is written raw
    add(dumps(['say "hi"', "back\\slash", "\\\"", "slash/", "new\nline", "tab\there",
               "cr\rlf\n", "\u0000nul", "\u0001", "\u001f", "\u007f", "\b\f"]))
    add(r'["escaped \/ solidus", "\u00e9 escaped", "\ud83d\ude00 pair", "\u2028\u2029", "\ufeffbom"]')
    add(dumps({"quote\"key": 1, "back\\key": 2, "new\nkey": 3, "\u0001": 4}))
    add(dumps(["é", "中文", "😀", "\U0010ffff", "ﬀ", "e\u0301", "\ud7ff", "\ue000"]))
    # nesting and whitespace in the input
    add(' { "z" : [ 1 , { "y" : [ ] , "x" : { } } ] ,\n\t"a" : null } ')
    add(dumps({"list": [3, 1, 2], "nested": {"b": [True, False, None], "a": {"c": [[], [{}]]}}}))
    add(dumps(deep(100)))
    # a real TUF root document (whole envelope) and just its signed part
    root = tuf_root()
    add(dumps(root))
    add(dumps(root["signed"]))
    return entries


def rejects() -> list[str]:
    return [
        "1.0",
        "0.5",
        "1e2",
        "-0.0",
        '{"version": 1.0}',
        '{"a": [1, 2, 3.14]}',
        '{"expires": "2030-01-01T00:00:00Z", "ratio": 1E-7}',
        dumps(deep(20)).replace('"bottom"', "2.5"),
    ]


def rejects_invalid_unicode() -> list[str]:
    # Lone surrogates: json.load accepts them and encode_canonical returns a
    # str, but .encode("utf-8") (the step python-tuf takes before hashing or
    # signing) raises. serde_json already refuses to parse these, which is why
    # they are not in canonical_rejects.json (that file must parse).
    return [r'["\ud800"]', r'{"\udfff": 1}', r'"a\udc00b"']


def python_only() -> list[str]:
    # Input spellings Python accepts as integers and canonicalises, but which a
    # stricter implementation may refuse (serde_json reads -0 as the float
    # -0.0). python-tuf never writes these itself. An implementation that
    # accepts them must produce the same bytes as canonical.py.
    return ['{"negative zero": -0, "list": [-0, 0]}', "-0"]


def render(entries: list[str]) -> str:
    text = "[\n" + ",\n".join(entries) + "\n]\n"
    json.loads(text)  # must stay parseable
    return text


def files() -> dict[str, str]:
    """File name -> exact text (used by selftest.py to check they are current)."""
    return {
        "canonical_corpus.json": render(corpus()),
        "canonical_rejects.json": render(rejects()),
        "canonical_rejects_invalid_unicode.json": render(rejects_invalid_unicode()),
        "canonical_python_only.json": render(python_only()),
    }


if __name__ == "__main__":
    for name, text in files().items():
        with open(os.path.join(HERE, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        print(f"wrote {name}: {len(json.loads(text))} documents")
