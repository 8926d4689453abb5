"""Runs the publisher benchmark steps and prints a table (called by scripts/bench)."""
import os
import resource
import subprocess
import sys
import time

BIN, WORK = sys.argv[1], sys.argv[2]
SIZES = [int(s) for s in sys.argv[3:]]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_files import make_files, isolated  # noqa: E402



rows = []
incremental = []
for n in SIZES:
    files = os.path.join(WORK, "files-%d" % n)
    print("preparing %d files..." % n, file=sys.stderr)
    make_files(files, n)
    repo = os.path.join(WORK, "repo-%d" % n)
    subprocess.run([BIN, "init", repo], check=True, stdout=subprocess.DEVNULL)
    add = [BIN, "--repo", repo, "add", files, "--name", "bench", "--version", "1.0.0"]
    if n >= 1_000_000:
        subprocess.run([BIN, "--repo", repo, "delegate", "bins", "--succinct", "12"], check=True, stdout=subprocess.DEVNULL)
        add += ["--delegation", "bins"]
    print("sealwright add + publish %d..." % n, file=sys.stderr)
    a = isolated(add)
    p = isolated([BIN, "--repo", repo, "publish"])
    rows.append(("sealwright", n, a, p))
    # The everyday publish: one more file into the repository just made. Its cost should
    # follow the change (one role), not the repository.
    one = os.path.join(WORK, "one-%d.txt" % n)
    with open(one, "wb") as f:
        f.write(b"one more release\n")
    add_one = [BIN, "--repo", repo, "add", one, "--name", "one", "--version", "1.0.0"]
    if n >= 1_000_000:
        add_one += ["--delegation", "bins"]
    print("sealwright add one file + publish into %d..." % n, file=sys.stderr)
    a1 = isolated(add_one)
    p1 = isolated([BIN, "--repo", repo, "publish"])
    incremental.append(("sealwright", n, a1[0] + p1[0], a1[1] + p1[1], max(a1[2], p1[2])))
    if n <= 100_000:
        print("python-tuf %d..." % n, file=sys.stderr)
        py_repo = os.path.join(WORK, "py-%d" % n)
        py = isolated([sys.executable, os.path.join(HERE, "bench_python_tuf.py"), files, py_repo])
        rows.append(("python-tuf", n, None, py))
        py1 = isolated([sys.executable, os.path.join(HERE, "bench_python_tuf_incremental.py"), py_repo, one])
        incremental.append(("python-tuf", n, py1[0], py1[1], py1[2]))
    subprocess.run(["rm", "-rf", files, repo, os.path.join(WORK, "py-%d" % n)], check=True)

print()
print("| tool | targets | add wall s | add CPU s | add RSS MiB | publish wall s | publish CPU s | publish RSS MiB | total CPU s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for tool, n, a, p in rows:
    if a is None:
        print("| %s | %d | - | - | - | %.2f | %.2f | %.0f | %.2f |" % (tool, n, p[0], p[1], p[2], p[1]))
    else:
        print("| %s | %d | %.2f | %.2f | %.0f | %.2f | %.2f | %.0f | %.2f |" % (tool, n, a[0], a[1], a[2], p[0], p[1], p[2], a[1] + p[1]))

print()
print("Incremental: add one file + publish into the repository above (1M: into its 4096 bins).")
print("| tool | targets | wall s | CPU s | peak RSS MiB |")
print("|---|---:|---:|---:|---:|")
for tool, n, wall, cpu, rss in incremental:
    print("| %s | %d | %.2f | %.2f | %.0f |" % (tool, n, wall, cpu, rss))
