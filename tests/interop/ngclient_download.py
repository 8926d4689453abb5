#!/usr/bin/env python3
"""Download targets from a local TUF repository with python-tuf's ngclient.

Usage:
    ngclient_download.py --repo-dir DIR --root FILE --out-dir OUT
                         [--target PATH ...] [--absent PATH ...] [--metadata-dir DIR]

DIR holds metadata/ and targets/; it is served over HTTP on 127.0.0.1 (an
ephemeral port) from a thread of this process. FILE is the trusted root the
client starts from (passed as the Updater's bootstrap root, with a fresh
empty metadata cache; with --metadata-dir, the cache is kept there and a root
already in it is trusted instead, as on a device). Then ngclient runs
refresh(), and for every --target get_targetinfo() + download_target() into
OUT; every --absent PATH must make get_targetinfo() return None.

stdout (one JSON line):
    success: {"ok": true, "targets": {PATH: sha256hex}, "absent": [PATH...],
              "files": {PATH: downloaded file}, "trusted_versions": {role: version}}
    failure: {"ok": false, "error_type": "...", "error": "...", "stage": "..."}
exit 0 on success, 1 on any failure (TUF error, missing target, found absent
target), 2 on bad arguments. stderr: every request the server saw
("GET /metadata/2.root.json -> 404") and a traceback on failure.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
import traceback

# The server is on loopback: never send its requests through a proxy.
for _var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(_var, None)
os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost"

from tuf.ngclient import Updater  # noqa: E402


class LoggingHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass

    def log_request(self, code="-", size="-") -> None:
        code = getattr(code, "value", code)
        print(f"{self.command} {self.path} -> {code}", file=sys.stderr, flush=True)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def run(args: argparse.Namespace, base: str, stage: list[str]) -> dict:
    # --metadata-dir keeps what the client trusts between runs, as a device does: then
    # the root it trusts is the cached one (bootstrap=None), not --root.
    persistent = args.metadata_dir is not None
    cache = args.metadata_dir or tempfile.mkdtemp(prefix="ngclient-metadata-")
    os.makedirs(cache, exist_ok=True)
    try:
        if persistent and os.path.exists(os.path.join(cache, "root.json")):
            trusted_root = None
        else:
            with open(args.root, "rb") as f:
                trusted_root = f.read()
        os.makedirs(args.out_dir, exist_ok=True)
        # tuf 7.x: the trusted root is passed as `bootstrap` bytes (required
        # keyword); the Updater caches it as root_history/N.root.json.
        updater = Updater(
            metadata_dir=cache,
            metadata_base_url=f"{base}/metadata/",
            target_base_url=f"{base}/targets/",
            target_dir=args.out_dir,
            bootstrap=trusted_root,
        )
        stage[0] = "refresh"
        updater.refresh()
        result: dict = {"ok": True, "targets": {}, "absent": [], "files": {}}
        for path in args.target:
            stage[0] = f"get_targetinfo {path}"
            info = updater.get_targetinfo(path)
            if info is None:
                raise LookupError(f"target not found in trusted metadata: {path}")
            stage[0] = f"download_target {path}"
            local = updater.download_target(info)
            result["targets"][path] = sha256_file(local)
            result["files"][path] = local
        for path in args.absent:
            stage[0] = f"get_targetinfo {path} (expected absent)"
            info = updater.get_targetinfo(path)
            if info is not None:
                raise LookupError(f"target expected to be absent was found: {path}")
            result["absent"].append(path)
        # Versions the client ended up trusting (top-level roles).
        trusted = {}
        for role in ("root", "timestamp", "snapshot", "targets"):
            with open(os.path.join(cache, f"{role}.json"), "rb") as f:
                trusted[role] = json.load(f)["signed"]["version"]
        result["trusted_versions"] = trusted
        return result
    finally:
        if not persistent:
            shutil.rmtree(cache, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description="Download targets with python-tuf ngclient.")
    p.add_argument("--repo-dir", required=True, help="directory with metadata/ and targets/")
    p.add_argument("--root", required=True, help="trusted root.json to start from")
    p.add_argument("--target", action="append", default=[], help="target path (repeatable)")
    p.add_argument("--absent", action="append", default=[], help="path that must not be found")
    p.add_argument("--out-dir", required=True, help="where downloaded targets go")
    p.add_argument("--metadata-dir", help="keep trusted metadata here between runs")
    args = p.parse_args()
    if not os.path.isdir(args.repo_dir):
        p.error(f"--repo-dir {args.repo_dir} is not a directory")

    handler = functools.partial(LoggingHandler, directory=os.path.abspath(args.repo_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"serving {args.repo_dir} at {base}", file=sys.stderr, flush=True)

    stage = ["setup"]
    try:
        result = run(args, base, stage)
        code = 0
    except Exception as e:  # noqa: BLE001 - report every failure the same way
        traceback.print_exc()
        result = {"ok": False, "error_type": type(e).__name__, "error": str(e), "stage": stage[0]}
        code = 1
    finally:
        server.shutdown()
        server.server_close()
    print(json.dumps(result, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())
