#!/usr/bin/env python3
"""python-tuf's ngclient over HTTPS against `sealwright serve`.

Usage: ngclient_https.py --base-url URL --ca FILE --root FILE --out-dir OUT --target PATH...

1. With tuf 7's default Urllib3Fetcher and no CA configured, refresh() must FAIL (the dev
   certificate is not trusted by default: proves certificates are checked).
2. With a fetcher whose urllib3 PoolManager is given ca_certs=FILE, refresh() and every
   download_target() must succeed.
3. With the default Urllib3Fetcher and SSL_CERT_FILE=FILE (what `sealwright serve` advises),
   refresh() must succeed as well.
stdout: one JSON line {"ok": true, "targets": {PATH: sha256}} or {"ok": false, "error": ...}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import traceback

for _var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(_var, None)
os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost"
os.environ.pop("SSL_CERT_FILE", None)
os.environ.pop("SSL_CERT_DIR", None)

import urllib3  # noqa: E402
from tuf.ngclient import Updater, Urllib3Fetcher  # noqa: E402
from tuf.ngclient.fetcher import FetcherInterface  # noqa: E402
from tuf.api import exceptions  # noqa: E402


class CAFetcher(FetcherInterface):
    """Like Urllib3Fetcher, trusting exactly one CA file."""

    def __init__(self, ca: str) -> None:
        self._pool = urllib3.PoolManager(ca_certs=ca, cert_reqs="CERT_REQUIRED")

    def _fetch(self, url: str):
        try:
            resp = self._pool.request(
                "GET", url, preload_content=False, timeout=urllib3.Timeout(30), retries=False
            )
        except urllib3.exceptions.MaxRetryError as e:
            raise exceptions.DownloadError(str(e)) from e
        if resp.status != 200:
            resp.release_conn()
            raise exceptions.DownloadHTTPError(f"HTTP {resp.status} for {url}", resp.status)
        return self._chunks(resp)

    @staticmethod
    def _chunks(resp):
        try:
            yield from resp.stream(65536)
        finally:
            resp.release_conn()


def updater(args, fetcher, out_dir):
    with open(args.root, "rb") as f:
        root = f.read()
    return Updater(
        metadata_dir=tempfile.mkdtemp(prefix="ngclient-https-"),
        metadata_base_url=f"{args.base_url}/metadata/",
        target_base_url=f"{args.base_url}/targets/",
        target_dir=out_dir,
        bootstrap=root,
        fetcher=fetcher,
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--target", action="append", default=[])
    args = ap.parse_args()
    try:
        # 1. Untrusted certificate: must fail.
        try:
            updater(args, Urllib3Fetcher(), args.out_dir).refresh()
        except Exception as e:  # noqa: BLE001
            chain = []
            err = e
            while err is not None:
                chain.append(repr(err))
                err = err.__cause__ or err.__context__
            text = " <- ".join(chain)
            if "CERTIFICATE_VERIFY_FAILED" not in text:
                print(json.dumps({"ok": False, "error": f"failed, but not on the certificate: {text}"}))
                return 1
            print(f"untrusted certificate refused as expected: {text}", file=sys.stderr)
        else:
            print(json.dumps({"ok": False, "error": "refresh succeeded without trusting the CA"}))
            return 1

        # 2. Trusting the dev CA through the fetcher's PoolManager.
        os.makedirs(args.out_dir, exist_ok=True)
        up = updater(args, CAFetcher(args.ca), args.out_dir)
        up.refresh()
        result = {}
        for t in args.target:
            info = up.get_targetinfo(t)
            if info is None:
                raise RuntimeError(f"target {t} not found")
            path = up.download_target(info)
            with open(path, "rb") as f:
                result[t] = hashlib.sha256(f.read()).hexdigest()

        # 3. The default fetcher with SSL_CERT_FILE, as `sealwright serve` advises.
        os.environ["SSL_CERT_FILE"] = args.ca
        updater(args, Urllib3Fetcher(), tempfile.mkdtemp()).refresh()

        print(json.dumps({"ok": True, "targets": result}))
        return 0
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
