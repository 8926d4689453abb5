#!/usr/bin/env python3
"""Self-check of the interop harness (run by scripts/test before cargo).

Proves, with the pinned python-tuf/securesystemslib, that:
  - canonical_corpus.json / canonical_rejects.json are current (regenerating
    them gives the same bytes) and canonical.py encodes / rejects them all;
  - make_python_repo.py writes repositories that python-tuf's own ngclient
    accepts, for every key type (and with root threshold 2 + root rotation),
    finding every manifest target with the right sha256 and none of the
    absent ones;
  - ngclient_download.py reports a tampered target as a failure (exit 1).
Prints one line per check and a closing 'N passed, N failed' line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable

results: list[tuple[str, bool]] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    results.append((name, ok))
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, *args], capture_output=True, text=True, check=False)


def check_canonical() -> None:
    sys.path.insert(0, HERE)
    import gen_canonical_corpus  # noqa: PLC0415

    for name, text in gen_canonical_corpus.files().items():
        with open(os.path.join(HERE, name), encoding="utf-8") as f:
            current = f.read()
        check(f"{name} is current", current == text,
              "run tests/interop/gen_canonical_corpus.py and commit the result")

    corpus = os.path.join(HERE, "canonical_corpus.json")
    p = run(os.path.join(HERE, "canonical.py"), corpus)
    ok = p.returncode == 0
    if ok:
        with open(corpus, encoding="utf-8") as f:
            n = len(json.load(f))
        out = json.loads(p.stdout)
        ok = len(out) == n and all(isinstance(h, str) for h in out)
    check("canonical.py encodes the corpus", ok, p.stderr.strip())

    for name in ("canonical_rejects.json", "canonical_rejects_invalid_unicode.json"):
        p = run(os.path.join(HERE, "canonical.py"), "--expect-reject", os.path.join(HERE, name))
        check(f"canonical.py --expect-reject refuses all of {name}", p.returncode == 0,
              p.stdout + p.stderr)
    p = run(os.path.join(HERE, "canonical.py"), os.path.join(HERE, "canonical_python_only.json"))
    check("canonical.py encodes canonical_python_only.json", p.returncode == 0, p.stderr)


def check_repo(tmp: str, label: str, *extra: str) -> str:
    repo = os.path.join(tmp, f"repo-{label}")
    p = run(os.path.join(HERE, "make_python_repo.py"), repo, *extra)
    if p.returncode != 0:
        check(f"make_python_repo.py {label}", False, p.stderr.strip())
        return repo
    with open(os.path.join(repo, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    args = [os.path.join(HERE, "ngclient_download.py"), "--repo-dir", repo,
            "--root", os.path.join(repo, manifest["trusted_root"]),
            "--out-dir", os.path.join(tmp, f"out-{label}")]
    for t in manifest["targets"]:
        args += ["--target", t["path"]]
    for t in manifest["absent"]:
        args += ["--absent", t["path"]]
    p = run(*args)
    ok = p.returncode == 0
    detail = p.stdout.strip() + "\n" + p.stderr.strip()[-2000:]
    if ok:
        got = json.loads(p.stdout)
        want = {t["path"]: t["sha256"] for t in manifest["targets"]}
        ok = got["ok"] and got["targets"] == want and \
            got["trusted_versions"]["root"] == manifest["root_versions"]
        detail = f"got {got}, want {want}"
    check(f"ngclient accepts make_python_repo.py {label}", ok, detail)
    return repo


def check_tamper(tmp: str, repo: str) -> None:
    with open(os.path.join(repo, "manifest.json"), encoding="utf-8") as f:
        target = json.load(f)["targets"][0]
    with open(os.path.join(repo, target["stored_as"]), "ab") as f:
        f.write(b"tampered")
    p = run(os.path.join(HERE, "ngclient_download.py"), "--repo-dir", repo,
            "--root", os.path.join(repo, "metadata", "1.root.json"),
            "--out-dir", os.path.join(tmp, "out-tamper"), "--target", target["path"])
    ok = p.returncode == 1 and json.loads(p.stdout)["ok"] is False
    check("ngclient_download.py fails on a tampered target", ok, p.stdout + p.stderr[-1000:])


def main() -> int:
    check_canonical()
    tmp = tempfile.mkdtemp(prefix="sealwright-interop-selftest-")
    try:
        ed = check_repo(tmp, "ed25519", "--key-type", "ed25519")
        check_repo(tmp, "ecdsa", "--key-type", "ecdsa")
        check_repo(tmp, "rsa-threshold2-rotated", "--key-type", "rsa",
                   "--root-threshold", "2", "--root-versions", "2")
        check_tamper(tmp, ed)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"selftest: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
