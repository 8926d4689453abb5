"""verify-release benchmark (called by `scripts/bench log`): a set-up server (agent + HTTPS
server, started as their systemd units say) takes one push; `sealwright evidence` writes
the release's evidence; then the time of

1. `sealwright verify-release --evidence ... --log-key ...` (offline: the TUF chain from the
   root, the artifact's entry and hashes, the log's proofs of the artifact and of its role's
   metadata, consistency from the tiles), and
2. the peer: `aics-tlog verify-inclusion` of the same artifact entry against the served log
   (checkpoint signature and one inclusion proof, over HTTPS to the local server),

each the median of RUNS runs, process start included.
"""
import os
import shlex
import socket
import statistics
import subprocess
import sys
import time

BIN, WORK, PY = sys.argv[1:4]
RUNS = 20


def run(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True, **kw).stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(predicate, what, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    sys.exit("%s did not start" % what)


def unit_value(unit, key):
    for line in open(unit):
        if line.startswith(key + "="):
            return line[len(key) + 1:].strip()
    sys.exit("%s has no %s=" % (unit, key))


def start(unit, passphrase=None):
    env = dict(os.environ)
    if passphrase:
        env["SEALWRIGHT_PASSPHRASE_FILE"] = passphrase
    return subprocess.Popen(shlex.split(unit_value(unit, "ExecStart")), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def median_seconds(cmd, env=None):
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    repo = os.path.join(WORK, "vr-repo")
    srv = os.path.join(WORK, "vr-srv")
    port = free_port()
    run(BIN, "init", repo)
    token = os.path.join(WORK, "vr.token")
    run(BIN, "--repo", repo, "server", "setup", srv, "--listen", "127.0.0.1:%d" % port,
        "--token-out", token)
    units = os.path.join(srv, "systemd")
    agent_unit = os.path.join(units, "sealwright-agent.service")
    credential = unit_value(agent_unit, "LoadCredential").split(":", 1)[1]
    procs = [start(agent_unit, credential)]
    try:
        wait(lambda: os.path.exists(os.path.join(srv, "agent/run/agent.sock")), "the agent")
        procs.append(start(os.path.join(units, "sealwright-server.service")))

        def listening():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        wait(listening, "the server")
        url = "https://127.0.0.1:%d" % port
        ca = os.path.join(srv, "tls/cert.pem")
        artifact = os.path.join(WORK, "app.bin")
        with open(artifact, "wb") as f:
            f.write(os.urandom(1 << 20))
        run(BIN, "--repo", repo, "add", artifact, "--name", "bench", "--version", "1.0.0")
        run(BIN, "--repo", repo, "push", "--server", url, "--token-file", token, "--ca", ca)
        root = os.path.join(srv, "server/published/metadata/1.root.json")
        evidence = os.path.join(WORK, "app.evidence")
        run(BIN, "evidence", "bench/1.0.0/app.bin", "--repo-url", url + "/", "--root", root,
            "--ca", ca, "-o", evidence)
        vkey = open(os.path.join(srv, "server/log.vkey")).read().strip()
        ours = median_seconds([BIN, "verify-release", "--root", root, "--evidence", evidence,
                               "--log-key", vkey, artifact])

        # The artifact's entry, from the log's entry bundle (fewer than 256 entries here).
        log = os.path.join(srv, "server/published/log")
        size = int(open(os.path.join(log, "checkpoint")).read().split("\n")[1])
        bundle = open(os.path.join(log, "tile/entries/000.p/%d" % size), "rb").read()
        index, entry, at = 0, None, 0
        while at < len(bundle):
            n = int.from_bytes(bundle[at:at + 2], "big")
            e = bundle[at + 2:at + 2 + n]
            if b'"path":"bench/1.0.0/app.bin"' in e:
                entry = e
                break
            at += 2 + n
            index += 1
        leaf = os.path.join(WORK, "leaf")
        open(leaf, "wb").write(entry)
        aics = os.path.join(os.path.dirname(PY), "aics-tlog")
        env = dict(os.environ, SSL_CERT_FILE=ca)
        peer = median_seconds([aics, "verify-inclusion", "--tiles", url + "/log/", "--log-key",
                               vkey, "--origin", vkey.split("+")[0], "--index", str(index),
                               "--leaf", leaf], env=env)
        print()
        print("| verification (median of %d runs, process start included) | seconds |" % RUNS)
        print("|---|---|")
        print("| sealwright verify-release: TUF chain + 1 MiB artifact + 2 log proofs, offline | %.3f |" % ours)
        print("| aics-tlog verify-inclusion: checkpoint + 1 inclusion proof, over HTTPS | %.3f |" % peer)
    finally:
        for p in procs:
            p.kill()
            p.wait()


main()
