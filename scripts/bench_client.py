"""Client benchmarks (called by `scripts/bench client`): Sealwright's client next to
python-tuf's ngclient on the same repository, in the same run.

1. refresh of an unchanged repository: requests and bytes (counted by the server), time;
2. download + verify of a large artifact over HTTPS from `sealwright serve`: throughput
   next to single-core SHA-256 of the same file streamed, and peak RSS;
3. with --targets N: looking up and downloading one target of an N-target repository in
   4096 TAP 15 hash bins, from a fresh client: requests and bytes.

usage: bench_client.py SEALWRIGHT TUF_CLIENT SHA256_SPEED WORK BIG_MIB TARGETS
"""
import http.server
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time

BIN, TUF_CLIENT, SHA_SPEED, WORK = sys.argv[1:5]
BIG_MIB, TARGETS = int(sys.argv[5]), int(sys.argv[6])
PY = sys.executable
for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(var, None)
os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost"


def run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        sys.exit("benchmark step failed: %s\n%s%s" % (" ".join(cmd), out.stdout, out.stderr))
    return out.stdout


def measured(cmd, env=None):
    """Runs cmd in a fresh Python process so its peak RSS is the command's own."""
    code = (
        "import resource,subprocess,sys,time,json;t=time.monotonic();"
        "p=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.PIPE,text=True);w=time.monotonic()-t;"
        "r=resource.getrusage(resource.RUSAGE_CHILDREN);"
        "print(json.dumps([p.returncode,w,r.ru_utime+r.ru_stime,r.ru_maxrss/1024,p.stderr[-2000:]]))"
    )
    out = subprocess.run([PY, "-c", code] + cmd, capture_output=True, text=True, env=env)
    rc, wall, cpu, rss, err = json.loads(out.stdout)
    if rc != 0:
        sys.exit("benchmark step failed: %s\n%s" % (" ".join(cmd), err))
    return wall, cpu, rss


class Counting(http.server.ThreadingHTTPServer):
    """A static file server that records (path, status, body bytes) of every request."""

    def __init__(self, root):
        self.log = []
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=root, **kw)

            def log_message(self, *a):
                pass

            def send_head(self):
                f = super().send_head()
                size = os.fstat(f.fileno()).st_size if f else 0
                with server.lock:
                    server.log.append((self.path, 200 if f else 404, size))
                return f

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/" % self.server_address[1]

    def take(self):
        with self.lock:
            log, self.log = self.log, []
        return log


def summary(log):
    return len(log), sum(b for _, _, b in log), " ".join(p.rsplit("/", 1)[-1] for p, _, _ in log)


NGCLIENT = r'''
import sys, os
from tuf.ngclient import Updater
mode, md, murl, tdir, turl = sys.argv[1:6]
u = Updater(metadata_dir=md, metadata_base_url=murl, target_dir=tdir, target_base_url=turl, bootstrap=None)
u.refresh()
for path in sys.argv[6:]:
    info = u.get_targetinfo(path)
    assert info is not None, path
    if mode == "download":
        u.download_target(info)
'''


def ngclient(mode, md, murl, tdir, turl, paths=(), env=None):
    return measured([PY, "-c", NGCLIENT, mode, md, murl, tdir, turl] + list(paths), env=env)


def fresh_md(name, root):
    md = os.path.join(WORK, name)
    shutil.rmtree(md, ignore_errors=True)
    os.makedirs(md)
    shutil.copy(root, os.path.join(md, "root.json"))
    return md


rows = []  # (benchmark, tool, figure, unit, note)

# --- A repository with one large artifact -----------------------------------------------
repo = os.path.join(WORK, "repo")
run([BIN, "init", repo])
big = os.path.join(WORK, "big.bin")
block = os.urandom(1 << 20)
with open(big, "wb") as f:
    for _ in range(BIG_MIB):
        f.write(block)
print("adding a %d MiB artifact..." % BIG_MIB, file=sys.stderr)
run([BIN, "--repo", repo, "add", big, "--name", "big", "--version", "1.0.0"])
run([BIN, "--repo", repo, "publish"])
published = os.path.join(repo, "published")
root = os.path.join(published, "metadata", "1.root.json")
# (big.bin stays: the SHA-256 ceiling below streams it.)

# --- 1. refresh of an unchanged repository ----------------------------------------------
srv = Counting(published)
murl, turl = srv.url + "metadata/", srv.url + "targets/"
md = fresh_md("md-ours", root)
run([TUF_CLIENT, "--metadata-dir", md, "init", root])
run([TUF_CLIENT, "--metadata-url", murl, "--metadata-dir", md, "refresh"])
srv.take()
times = []
for _ in range(20):
    times.append(measured([TUF_CLIENT, "--metadata-url", murl, "--metadata-dir", md, "refresh"])[0])
reqs = srv.take()
n, b, names = summary(reqs[: len(reqs) // 20])
rows.append(("refresh, unchanged repository", "sealwright-tuf-client", "%d requests, %d bytes, %.1f ms" % (n, b, 1000 * sorted(times)[10]), names))

md = fresh_md("md-py", root)
tdir = os.path.join(WORK, "t-py")
os.makedirs(tdir, exist_ok=True)
ngclient("refresh", md, murl, tdir, turl)
srv.take()
times = [ngclient("refresh", md, murl, tdir, turl)[0] for _ in range(20)]
reqs = srv.take()
n, b, names = summary(reqs[: len(reqs) // 20])
rows.append(("refresh, unchanged repository", "python-tuf ngclient", "%d requests, %d bytes, %.1f ms" % (n, b, 1000 * sorted(times)[10]), names))
srv.shutdown()

def best_of_3(attempt):
    """The fastest of three runs of attempt(i) -> (wall, cpu, rss)."""
    return min((attempt(i) for i in range(3)), key=lambda r: r[0])


def throughput(result, total, sha):
    """A download result next to the SHA-256 ceiling."""
    w, _, rss = result
    return "%.0f MB/s (%.0f%% of SHA-256), %.2f s, peak RSS %.1f MiB" % (
        total / w / 1e6, 100 * total / w / 1e6 / sha["mb_per_s"], w, rss)


# --- 2. download + verify of the large artifact over HTTPS ------------------------------
# The ceiling: the same bytes streamed from their file through the client's hasher, one
# core (not one huge buffer, which no verification reads).
sha = json.loads(run([SHA_SPEED, big]))
rows.append(("SHA-256 of the %d MiB file, streamed, one core" % BIG_MIB, "aws-lc-rs (our crypto)", "%.0f MB/s" % sha["mb_per_s"], "the ceiling for download+verify"))

ca = os.path.join(WORK, "serve-ca.pem")
serve = subprocess.Popen([BIN, "--repo", repo, "--json", "serve", "--listen", "127.0.0.1:0", "--dev-cert-out", ca],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    ready = json.loads(serve.stdout.readline())
    url = ready["url"].rstrip("/") + "/"
    total = BIG_MIB * (1 << 20)

    def install(attempt):
        device = os.path.join(WORK, "device-%d" % attempt)
        run([BIN, "client", "init", "--dir", device, "--root", root, "--url", url, "--ca", ca, "--name", "big"])
        try:
            return measured([BIN, "update", "--dir", device])
        finally:
            shutil.rmtree(device)

    rows.append(("update: download + verify + install %d MiB (HTTPS)" % BIG_MIB, "sealwright update",
                 throughput(best_of_3(install), total, sha), "best of 3; client and server share the 2 cores"))
    env = dict(os.environ, SSL_CERT_FILE=ca)

    def python_download(attempt):
        md = fresh_md("md-py-big", root)
        tdir = os.path.join(WORK, "t-py-big")
        shutil.rmtree(tdir, ignore_errors=True)
        os.makedirs(tdir)
        try:
            return ngclient("download", md, url + "metadata/", tdir, url + "targets/", ["big/1.0.0/big.bin"], env=env)
        finally:
            shutil.rmtree(tdir)

    rows.append(("update: download + verify + install %d MiB (HTTPS)" % BIG_MIB, "python-tuf ngclient",
                 throughput(best_of_3(python_download), total, sha), "download_target"))
finally:
    serve.terminate()
    serve.wait()

# The same artifact from an offline bundle: no network, no server on the other core.
bundle = os.path.join(WORK, "big.bundle")
run([BIN, "--repo", repo, "bundle", "create", "--name", "big", "--channel", "stable", "-o", bundle])


def install_bundle(attempt):
    device = os.path.join(WORK, "device-bundle-%d" % attempt)
    run([BIN, "client", "init", "--dir", device, "--root", root, "--url", "https://offline.invalid/", "--name", "big"])
    try:
        return measured([BIN, "update", "--dir", device, "--bundle", bundle])
    finally:
        shutil.rmtree(device)


rows.append(("update --bundle: verify + install %d MiB offline" % BIG_MIB, "sealwright update",
             throughput(best_of_3(install_bundle), total, sha), "best of 3; hashing on its own thread beside the copy"))
os.remove(bundle)

# --- 3. one target of a large hash-binned repository ------------------------------------
if TARGETS:
    files = os.path.join(WORK, "files")
    for i in range(TARGETS):
        d = os.path.join(files, "d%04d" % (i // 1000))
        if i % 1000 == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%07d.txt" % i), "wb") as f:
            f.write(b"target %d\n" % i)
    many = os.path.join(WORK, "many")
    run([BIN, "init", many])
    run([BIN, "--repo", many, "delegate", "bins", "--succinct", "12"])
    print("adding and publishing %d targets in 4096 bins..." % TARGETS, file=sys.stderr)
    run([BIN, "--repo", many, "add", files, "--name", "many", "--version", "1.0.0", "--delegation", "bins"])
    app = os.path.join(WORK, "app.bin")
    with open(app, "wb") as f:
        f.write(b"the release a device looks for\n")
    run([BIN, "--repo", many, "add", app, "--name", "app", "--version", "1.0.0", "--delegation", "bins"])
    run([BIN, "--repo", many, "publish"])
    shutil.rmtree(files)
    published = os.path.join(many, "published")
    root = os.path.join(published, "metadata", "1.root.json")
    path = "many/1.0.0/d%04d/f%07d.txt" % ((TARGETS // 2) // 1000, TARGETS // 2)
    srv = Counting(published)
    murl, turl = srv.url + "metadata/", srv.url + "targets/"
    md = fresh_md("md-many", root)
    tdir = os.path.join(WORK, "t-many")
    os.makedirs(tdir, exist_ok=True)
    run([TUF_CLIENT, "--metadata-dir", md, "init", root])
    srv.take()
    w, _, rss = measured([TUF_CLIENT, "--metadata-url", murl, "--metadata-dir", md, "--target-name", path,
                          "--target-dir", tdir, "--target-base-url", turl, "download"])
    log = srv.take()
    meta = [r for r in log if "/metadata/" in r[0]]
    n, b, names = summary(meta)
    rows.append(("first lookup + download of 1 of %d targets" % TARGETS, "sealwright-tuf-client",
                 "%d metadata requests (%d found), %d metadata bytes, +%d artifact bytes, %.2f s" % (n, sum(1 for r in meta if r[1] == 200), b, sum(r[2] for r in log if "/targets/" in r[0]), w), names))
    md = fresh_md("md-many-py", root)
    tdir = os.path.join(WORK, "t-many-py")
    os.makedirs(tdir, exist_ok=True)
    srv.take()
    w, _, rss = ngclient("download", md, murl, tdir, turl, [path])
    log = srv.take()
    meta = [r for r in log if "/metadata/" in r[0]]
    n, b, names = summary(meta)
    rows.append(("first lookup + download of 1 of %d targets" % TARGETS, "python-tuf ngclient",
                 "%d metadata requests (%d found), %d metadata bytes, +%d artifact bytes, %.2f s" % (n, sum(1 for r in meta if r[1] == 200), b, sum(r[2] for r in log if "/targets/" in r[0]), w), names))
    srv.shutdown()

    # The same first update check as a device does it: `sealwright update` over HTTPS from
    # `sealwright serve`, which sends metadata gzip-compressed to clients that accept it.
    ca = os.path.join(WORK, "many-ca.pem")
    serve = subprocess.Popen([BIN, "--repo", many, "--json", "serve", "--listen", "127.0.0.1:0", "--dev-cert-out", ca],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = json.loads(serve.stdout.readline())["url"].rstrip("/") + "/"

        def counters():
            import ssl
            import urllib.request
            body = urllib.request.urlopen(url + "metrics", context=ssl.create_default_context(cafile=ca)).read().decode()
            get = lambda name: sum(float(l.split()[-1]) for l in body.splitlines() if l.startswith(name))
            return get("sealwright_http_requests_total"), get("sealwright_http_response_bytes_total"), len(body)

        device = os.path.join(WORK, "device-many")
        run([BIN, "client", "init", "--dir", device, "--root", root, "--url", url, "--ca", ca, "--name", "app"])
        r0, b0, m0 = counters()
        w, _, _ = measured([BIN, "update", "--dir", device])
        r1, b1, _ = counters()
        rows.append(("first update check + install in the %d-target repository (HTTPS)" % TARGETS, "sealwright update",
                     "%d requests, %d bytes (metadata gzip), %.2f s" % (r1 - r0 - 1, b1 - b0 - m0, w),
                     "root probe, timestamp, snapshot, targets, one bin, artifact"))
        md = fresh_md("md-many-https", root)
        tdir = os.path.join(WORK, "t-many-https")
        os.makedirs(tdir, exist_ok=True)
        r0, b0, m0 = counters()
        w, _, _ = ngclient("download", md, url + "metadata/", tdir, url + "targets/", ["app/channels/stable.json"],
                           env=dict(os.environ, SSL_CERT_FILE=ca))
        r1, b1, _ = counters()
        rows.append(("first update check + install in the %d-target repository (HTTPS)" % TARGETS, "python-tuf ngclient",
                     "%d requests, %d bytes, %.2f s" % (r1 - r0 - 1, b1 - b0 - m0, w),
                     "get_targetinfo + download_target of the channel pointer only"))
    finally:
        serve.terminate()
        serve.wait()

print()
print("| benchmark | client | result | note |")
print("|---|---|---|---|")
for bench, tool, figure, note in rows:
    print("| %s | %s | %s | %s |" % (bench, tool, figure, note))
