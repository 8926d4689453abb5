"""Push benchmarks (called by `scripts/bench push`):

1. one push of a one-file release into a repository of N targets (no bins), next to
   python-tuf adding one file to the same size of repository locally (its load, sign and
   write: there is no python-tuf server to push to);
2. pushes per second: 8 publishers, each pushing one-file releases of its own delegated role
   over one keep-alive connection with its key opened once (examples/push_load.rs), against
   the embedded server (files + SQLite) and, when `scripts/services start` has run, two
   replicas on PostgreSQL + S3 (moto).
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import time

BIN, LOAD, FRESH, WORK = sys.argv[1:5]
N = int(sys.argv[5])
SECS = int(sys.argv[6])
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_files import make_files, isolated  # noqa: E402

TEAMS = 8
procs = []


def run(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True, **kw).stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("the server did not start on port %d" % port)


def repository(path, n):
    run(BIN, "init", path)
    if n:
        files = path + "-files"
        make_files(files, n)
        run(BIN, "--repo", path, "add", files, "--name", "bench", "--version", "1.0.0")
    for i in range(TEAMS):
        run(BIN, "--repo", path, "delegate", "team-%d" % i, "--paths", "team-%d/*/*" % i)
    run(BIN, "--repo", path, "publish")


def server(repo, name, store=None):
    """server setup + agent + serve --push; returns (url, ca, data dir, targets token, teams token)."""
    port = free_port()
    srv = os.path.join(WORK, name)
    out = json.loads(run(BIN, "--repo", repo, "--json", "server", "setup", srv,
                         "--listen", "127.0.0.1:%d" % port, "--token-out", srv + ".token"))
    procs.append(subprocess.Popen(out["agent_command"], stdout=subprocess.DEVNULL))
    time.sleep(0.3)
    data = out["server"]["dir"]
    teams = ["--role=team-%d" % i for i in range(TEAMS)]
    run(BIN, "--repo", data, "token", "add", "teams", *teams, "-o", srv + "-teams.token")
    command = list(out["server_command"])
    env = dict(os.environ)
    if store:
        command += ["--store", store["database"], "--objects", store["objects"]]
        env.update(store["env"])
    procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env))
    wait_port(port)
    return out["url"], out["cert"], data, srv + ".token", srv + "-teams.token"


def replica(data, store, name):
    """A second replica: a copy of DATA's directory, on the same store."""
    copy = os.path.join(WORK, name)
    run("cp", "-a", data, copy)
    port = free_port()
    env = dict(os.environ)
    env.update(store["env"])
    cert = os.path.join(WORK, name + ".pem")
    procs.append(subprocess.Popen(
        [BIN, "--repo", copy, "serve", "--push", "--listen", "127.0.0.1:%d" % port,
         "--dev-cert-out", cert, "--store", store["database"], "--objects", store["objects"]],
        stdout=subprocess.DEVNULL, env=env))
    wait_port(port)
    return "https://127.0.0.1:%d" % port, cert


def load(repo, url, ca, token):
    return json.loads(run(LOAD, repo, url, ca, token, str(TEAMS), str(SECS)))


try:
    rows = []
    # 1. One push into N targets.
    big = os.path.join(WORK, "big")
    print("preparing a repository of %d targets..." % N, file=sys.stderr)
    repository(big, N)
    url, ca, data, token, _ = server(big, "big-server")
    walls = []
    for k in range(1, 4):
        one = os.path.join(WORK, "one-%d.txt" % k)
        with open(one, "w") as f:
            f.write("one more release %d\n" % k)
        run(BIN, "--repo", big, "add", one, "--name", "one", "--version", "1.0.%d" % k)
        t = time.monotonic()
        run(BIN, "--repo", big, "push", "--server", url, "--token-file", token, "--ca", ca)
        walls.append(time.monotonic() - t)
    push_wall = statistics.median(walls)
    print("python-tuf %d..." % N, file=sys.stderr)
    files = os.path.join(WORK, "py-files")
    make_files(files, N)
    py_repo = os.path.join(WORK, "py")
    isolated([sys.executable, os.path.join(HERE, "bench_python_tuf.py"), files, py_repo])
    py = isolated([sys.executable, os.path.join(HERE, "bench_python_tuf_incremental.py"), py_repo,
                   os.path.join(WORK, "one-1.txt")])

    # 2. Pushes per second, embedded.
    small = os.path.join(WORK, "small")
    repository(small, 0)
    url, ca, data, _, teams = server(small, "small-server")
    print("pushes for %d s, embedded..." % SECS, file=sys.stderr)
    rows.append(("embedded (files + SQLite), 1 server", load(small, url, ca, teams)))

    # 3. Pushes per second, two replicas on PostgreSQL + S3.
    if os.environ.get("SEALWRIGHT_TEST_POSTGRES"):
        store = json.loads(run(FRESH))
        shared = os.path.join(WORK, "shared")
        repository(shared, 0)
        url_a, ca_a, data_a, _, teams_a = server(shared, "shared-server", store)
        url_b, ca_b = replica(data_a, store, "shared-replica-b")
        print("pushes for %d s, two replicas..." % SECS, file=sys.stderr)
        # Publishers split between the replicas as a load balancer would: 4 roles each.
        both = []
        for k, (u, c) in enumerate(((url_a, ca_a), (url_b, ca_b))):
            half = TEAMS // 2
            both.append(subprocess.Popen([LOAD, shared, u, c, teams_a, str(half), str(SECS), str(k * half)],
                                         stdout=subprocess.PIPE, text=True))
        results = [json.loads(p.communicate()[0]) for p in both]
        rows.append(("shared (PostgreSQL + S3/moto), 2 replicas", {
            "pushes": sum(r["pushes"] for r in results),
            "per_second": sum(r["per_second"] for r in results),
            "p50_ms": max(r["p50_ms"] for r in results),
            "p99_ms": max(r["p99_ms"] for r in results),
            "errors": sum(r["errors"] for r in results),
        }))
    else:
        print("(shared store skipped: run `eval \"$(scripts/services start)\"` first)", file=sys.stderr)

    print()
    print("One push of a one-file release into %d targets (no bins), median of 3:" % N)
    print("| tool | wall s |")
    print("|---|---:|")
    print("| sealwright push (publisher + server) | %.2f |" % push_wall)
    print("| python-tuf, local add one file + sign + write | %.2f |" % py[0])
    print()
    print("Pushes of one-file releases, %d publishers, %d s:" % (TEAMS, SECS))
    print("| server | pushes/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows:
        print("| %s | %.1f | %.0f | %.0f | %d |" % (name, r["per_second"], r["p50_ms"], r["p99_ms"], r["errors"]))
finally:
    for p in procs:
        p.kill()
