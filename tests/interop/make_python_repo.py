#!/usr/bin/env python3
"""Write a complete consistent-snapshot TUF repository with python-tuf.

Usage:
    make_python_repo.py OUTDIR [--key-type {ed25519,ecdsa,rsa}]
                               [--root-threshold N] [--root-versions N]
                               [--expires YYYY-MM-DDTHH:MM:SSZ]

OUTDIR must not exist or be empty. Output (see README.md for details):
    OUTDIR/metadata/  1.root.json .. K.root.json, root.json (= newest root),
                      timestamp.json, 1.snapshot.json, 1.targets.json,
                      1.<delegated role>.json for every delegated role
    OUTDIR/targets/   every target stored as <dir>/<sha256>.<basename> and
                      <dir>/<sha512>.<basename>
    OUTDIR/keys/      <name>.pem (PKCS#8, unencrypted) + <name>.pub.json
                      (securesystemslib key dict) for every key used
    OUTDIR/manifest.json  what a client must find (and must not find)

The metadata is written with python-tuf's Metadata API and signed with
securesystemslib CryptoSigner keys; it is what python-tuf itself publishes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives import serialization
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Role,
    Root,
    Snapshot,
    SuccinctRoles,
    Targets,
    TargetFile,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

HASH_ALGS = ["sha256", "sha512"]
EXTRA_FIELD = "x-sealwright-unknown"


def generate(key_type: str) -> CryptoSigner:
    if key_type == "ed25519":
        return CryptoSigner.generate_ed25519()
    if key_type == "ecdsa":
        return CryptoSigner.generate_ecdsa()  # ecdsa-sha2-nistp256
    if key_type == "rsa":
        return CryptoSigner.generate_rsa()  # rsassa-pss-sha256, 3072 bits
    raise ValueError(key_type)


class Builder:
    def __init__(self, out: str, key_type: str, expires: datetime):
        self.out = out
        self.key_type = key_type
        self.expires = expires
        self.meta_dir = os.path.join(out, "metadata")
        self.targets_dir = os.path.join(out, "targets")
        self.keys_dir = os.path.join(out, "keys")
        for d in (self.meta_dir, self.targets_dir, self.keys_dir):
            os.makedirs(d, exist_ok=True)
        self.signers: dict[str, list[CryptoSigner]] = {}
        self.key_files: dict[str, dict] = {}
        self.role_files: dict[str, dict] = {}  # role name -> manifest info
        self.snapshot_meta: dict[str, MetaFile] = {}
        self.expected: list[dict] = []
        self.absent: list[dict] = []
        self.shadowed: list[dict] = []

    # --- keys ---------------------------------------------------------------
    def new_signer(self, name: str) -> CryptoSigner:
        signer = generate(self.key_type)
        pem = signer._private_key.private_bytes(  # noqa: SLF001 - test fixture
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with open(os.path.join(self.keys_dir, f"{name}.pem"), "wb") as f:
            f.write(pem)
        with open(os.path.join(self.keys_dir, f"{name}.pub.json"), "w") as f:
            json.dump(signer.public_key.to_dict(), f, indent=1, sort_keys=True)
        self.key_files[name] = {
            "keyid": signer.public_key.keyid,
            "keytype": signer.public_key.keytype,
            "scheme": signer.public_key.scheme,
            "private": f"keys/{name}.pem",
            "public": f"keys/{name}.pub.json",
        }
        return signer

    # --- metadata -----------------------------------------------------------
    def write(self, md: Metadata, name: str, signers: list[CryptoSigner]) -> bytes:
        for s in signers:
            md.sign(s, append=True)
        data = md.to_bytes(JSONSerializer())
        version = md.signed.version
        if name == "timestamp":
            filename = "timestamp.json"
        else:
            filename = f"{version}.{name}.json"
        with open(os.path.join(self.meta_dir, filename), "wb") as f:
            f.write(data)
        if name == "root":
            with open(os.path.join(self.meta_dir, "root.json"), "wb") as f:
                f.write(data)
        return data

    def add_to_snapshot(self, name: str, md: Metadata, data: bytes, full: bool) -> None:
        if full:
            mf = MetaFile.from_data(md.signed.version, data, HASH_ALGS)
        else:
            mf = MetaFile(version=md.signed.version)
        self.snapshot_meta[f"{name}.json"] = mf

    # --- targets ------------------------------------------------------------
    def add_target(
        self,
        role: Targets,
        role_name: str,
        path: str,
        content: bytes,
        *,
        custom: dict | None = None,
        extra: dict | None = None,
        expect: str = "found",
        reason: str = "",
    ) -> TargetFile:
        tf = TargetFile.from_data(path, content, HASH_ALGS)
        if custom is not None:
            tf.unrecognized_fields["custom"] = custom
        if extra is not None:
            tf.unrecognized_fields.update(extra)
        role.targets[path] = tf
        dirname, sep, basename = path.rpartition("/")
        for alg in HASH_ALGS:
            stored = os.path.join(self.targets_dir, f"{dirname}{sep}{tf.hashes[alg]}.{basename}")
            os.makedirs(os.path.dirname(stored), exist_ok=True)
            with open(stored, "wb") as f:
                f.write(content)
        entry = {
            "path": path,
            "role": role_name,
            "length": len(content),
            "sha256": tf.hashes["sha256"],
            "sha512": tf.hashes["sha512"],
            "hex": content.hex(),
            "stored_as": f"targets/{dirname}{sep}{tf.hashes['sha256']}.{basename}",
        }
        if custom is not None:
            entry["custom"] = custom
        if expect == "found":
            self.expected.append(entry)
        elif expect == "shadowed":
            entry["reason"] = reason
            self.shadowed.append(entry)
        else:
            entry["reason"] = reason
            self.absent.append(entry)
        return tf


def path_hash(path: str) -> str:
    return hashlib.sha256(path.encode("utf-8")).hexdigest()


def build(out: str, key_type: str, root_threshold: int, root_versions: int, expires: datetime):
    b = Builder(out, key_type, expires)
    exp = expires

    # Keys: one per top-level role (root may have several), one shared by the
    # classic delegated roles, one shared by all succinct bins.
    root_signers = [b.new_signer(f"root-v1-{i}") for i in range(root_threshold)]
    ts = b.new_signer("timestamp")
    sn = b.new_signer("snapshot")
    tg = b.new_signer("targets")
    dl = b.new_signer("delegated")
    bn = b.new_signer("bins")

    # --- delegated roles (leaves first) --------------------------------------
    def new_targets() -> Targets:
        return Targets(version=1, expires=exp)

    roles_md: dict[str, Metadata] = {}

    # nested-role, delegated from paths-role
    nested = new_targets()
    b.add_target(nested, "nested-role", "paths-role/nested/deep.txt", b"nested delegation\n")
    roles_md["nested-role"] = Metadata(nested)

    # paths-role: paths ["paths-role/*", "paths-role/nested/*"]
    paths_role = new_targets()
    b.add_target(paths_role, "paths-role", "paths-role/hello.txt", b"hello from paths-role\n")
    b.add_target(paths_role, "paths-role", "paths-role/dup.txt", b"winner: paths-role\n")
    b.add_target(
        paths_role,
        "paths-role",
        "paths-role/other/x.txt",
        b"listed by paths-role but outside every pattern that leads to it\n",
        expect="absent",
        reason="'*' matches one path component only, so no delegation to paths-role "
        "matches 'paths-role/other/x.txt'",
    )
    paths_role.delegations = Delegations(
        keys={dl.public_key.keyid: dl.public_key},
        roles={
            "nested-role": DelegatedRole(
                "nested-role", [dl.public_key.keyid], 1, False, paths=["paths-role/nested/*"]
            )
        },
    )
    roles_md["paths-role"] = Metadata(paths_role)

    # priority-shadow: also claims paths-role/*, but comes after paths-role
    shadow = new_targets()
    b.add_target(
        shadow,
        "priority-shadow",
        "paths-role/dup.txt",
        b"loser: priority-shadow\n",
        expect="shadowed",
        reason="paths-role is delegated earlier and lists the same path",
    )
    b.add_target(shadow, "priority-shadow", "paths-role/only-in-shadow.txt", b"shadow only\n")
    roles_md["priority-shadow"] = Metadata(shadow)

    # hash-prefix-role: path_hash_prefixes
    hashed_path = "hashed/one.txt"
    prefix = path_hash(hashed_path)[:4]
    miss_path = next(
        f"hashed/miss-{i}.txt" for i in range(1000) if not path_hash(f"hashed/miss-{i}.txt").startswith(prefix)
    )
    hp = new_targets()
    b.add_target(hp, "hash-prefix-role", hashed_path, b"found through path_hash_prefixes\n")
    b.add_target(
        hp,
        "hash-prefix-role",
        miss_path,
        b"listed, but its path hash is outside the role's prefixes\n",
        expect="absent",
        reason=f"sha256('{miss_path}') does not start with '{prefix}'",
    )
    roles_md["hash-prefix-role"] = Metadata(hp)

    # terminating-role (terminating: true) and after-terminating
    term = new_targets()
    b.add_target(term, "terminating-role", "term/found.txt", b"from the terminating role\n")
    roles_md["terminating-role"] = Metadata(term)
    after = new_targets()
    b.add_target(
        after,
        "after-terminating",
        "term/shadowed.txt",
        b"unreachable: an earlier terminating delegation matched\n",
        expect="absent",
        reason="terminating-role matches 'term/*' and is terminating, so the search "
        "stops before after-terminating",
    )
    roles_md["after-terminating"] = Metadata(after)

    # TAP 15 succinct hashed bins under bins-parent
    succinct = SuccinctRoles([bn.public_key.keyid], 1, bit_length=3, name_prefix="bin")
    bins: dict[str, Targets] = {name: new_targets() for name in succinct.get_roles()}
    used_bins: set[str] = set()
    for name in ["alpha", "beta", "gamma", "delta", "epsilon"]:
        path = f"bins/{name}.txt"
        bin_name = succinct.get_role_for_target(path)
        used_bins.add(bin_name)
        b.add_target(bins[bin_name], bin_name, path, f"bin target {name}\n".encode())
    if len(used_bins) < 2:
        raise RuntimeError("bin targets all landed in one bin; pick other names")
    bins_parent = new_targets()
    bins_parent.delegations = Delegations(
        keys={bn.public_key.keyid: bn.public_key}, succinct_roles=succinct
    )
    roles_md["bins-parent"] = Metadata(bins_parent)
    for name, t in bins.items():
        roles_md[name] = Metadata(t)

    # --- top-level targets ---------------------------------------------------
    targets = Targets(version=1, expires=exp)
    targets.unrecognized_fields[EXTRA_FIELD] = {"note": "python-tuf keeps unknown fields", "n": 1}
    b.add_target(
        targets,
        "targets",
        "file1.txt",
        b"top-level target one\n",
        custom={"name": "file1", "version": "1.2.3", "channel": "stable", "tags": ["a", "b"]},
        extra={EXTRA_FIELD: True},
    )
    b.add_target(targets, "targets", "a/b/file.txt", b"top-level target in a subdirectory\n")
    b.absent.append({"path": "nonexistent.txt", "role": None, "reason": "listed nowhere"})

    def dr(name: str, terminating: bool = False, **kw) -> DelegatedRole:
        return DelegatedRole(name, [dl.public_key.keyid], 1, terminating, **kw)

    paths_dr = dr("paths-role", paths=["paths-role/*", "paths-role/nested/*"])
    paths_dr.unrecognized_fields[EXTRA_FIELD] = "unknown field inside a delegated role"
    delegated_roles = [
        paths_dr,
        dr("priority-shadow", paths=["paths-role/*"]),
        dr("hash-prefix-role", path_hash_prefixes=[prefix]),
        dr("terminating-role", terminating=True, paths=["term/*"]),
        dr("after-terminating", paths=["term/*"]),
        DelegatedRole("bins-parent", [dl.public_key.keyid], 1, False, paths=["bins/*"]),
    ]
    targets.delegations = Delegations(
        keys={dl.public_key.keyid: dl.public_key},
        roles={r.name: r for r in delegated_roles},
    )

    # --- write delegated + targets, then snapshot, timestamp ----------------
    signer_for = {name: [bn] if name in bins else [dl] for name in roles_md}
    for name, md in roles_md.items():
        data = b.write(md, name, signer_for[name])
        b.add_to_snapshot(name, md, data, full=False)
        b.role_files[name] = {"version": 1, "file": f"metadata/1.{name}.json"}
    md_targets = Metadata(targets)
    data = b.write(md_targets, "targets", [tg])
    b.add_to_snapshot("targets", md_targets, data, full=True)
    b.role_files["targets"] = {"version": 1, "file": "metadata/1.targets.json"}

    snapshot = Snapshot(version=1, expires=exp, meta=b.snapshot_meta)
    md_snapshot = Metadata(snapshot)
    snap_data = b.write(md_snapshot, "snapshot", [sn])
    b.role_files["snapshot"] = {"version": 1, "file": "metadata/1.snapshot.json"}

    snap_mf = MetaFile.from_data(1, snap_data, HASH_ALGS)
    snap_mf.unrecognized_fields[EXTRA_FIELD] = "unknown field inside a meta file"
    timestamp = Timestamp(version=1, expires=exp, snapshot_meta=snap_mf)
    b.write(Metadata(timestamp), "timestamp", [ts])
    b.role_files["timestamp"] = {"version": 1, "file": "metadata/timestamp.json"}

    # --- root (and optional rotations) --------------------------------------
    prev_signers: list[CryptoSigner] = []
    signers = root_signers
    for version in range(1, root_versions + 1):
        if version > 1:
            signers = [b.new_signer(f"root-v{version}-{i}") for i in range(root_threshold)]
        root = Root(
            version=version,
            expires=exp,
            consistent_snapshot=True,
            roles={n: Role([], 1) for n in ("root", "timestamp", "snapshot", "targets")},
        )
        for s in signers:
            root.add_key(s.public_key, "root")
        root.roles["root"].threshold = root_threshold
        root.add_key(ts.public_key, "timestamp")
        root.add_key(sn.public_key, "snapshot")
        root.add_key(tg.public_key, "targets")
        # A new root is signed by the previous root's keys and its own.
        b.write(Metadata(root), "root", prev_signers + signers)
        prev_signers = signers
    b.role_files["root"] = {"version": root_versions, "file": f"metadata/{root_versions}.root.json"}

    manifest = {
        "generator": "tests/interop/make_python_repo.py",
        "key_type": key_type,
        "scheme": tg.public_key.scheme,
        "consistent_snapshot": True,
        "expires": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "root_threshold": root_threshold,
        "root_versions": root_versions,
        "trusted_root": "metadata/1.root.json",
        "metadata_dir": "metadata",
        "targets_dir": "targets",
        "roles": b.role_files,
        "succinct": {
            "delegator": "bins-parent",
            "bit_length": 3,
            "name_prefix": "bin",
            "bins_with_targets": sorted(used_bins),
        },
        "hash_prefix": {"role": "hash-prefix-role", "prefixes": [prefix]},
        "unknown_field": EXTRA_FIELD,
        "keys": b.key_files,
        "targets": b.expected,
        "absent": b.absent,
        "shadowed": b.shadowed,
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    return manifest


def main() -> int:
    p = argparse.ArgumentParser(description="Write a python-tuf repository fixture.")
    p.add_argument("outdir")
    p.add_argument("--key-type", choices=["ed25519", "ecdsa", "rsa"], default="ed25519")
    p.add_argument("--root-threshold", type=int, default=1, help="root keys = threshold (default 1)")
    p.add_argument(
        "--root-versions",
        type=int,
        default=1,
        help="write 1.root.json..N.root.json, rotating the root keys each version (default 1)",
    )
    p.add_argument(
        "--expires",
        help="expiry of every role, e.g. 2031-01-01T00:00:00Z (default: now + 365 days)",
    )
    args = p.parse_args()
    if args.root_threshold < 1 or args.root_versions < 1:
        p.error("--root-threshold and --root-versions must be >= 1")
    if args.expires:
        expires = datetime.strptime(args.expires, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    else:
        expires = (datetime.now(timezone.utc) + timedelta(days=365)).replace(microsecond=0)
    if os.path.exists(args.outdir) and os.listdir(args.outdir):
        p.error(f"{args.outdir} exists and is not empty")
    manifest = build(args.outdir, args.key_type, args.root_threshold, args.root_versions, expires)
    print(
        f"wrote {args.outdir}: {len(manifest['roles'])} roles, {len(manifest['targets'])} "
        f"targets, {len(manifest['absent'])} absent cases ({args.key_type})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
