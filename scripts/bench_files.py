"""Helpers shared by the benchmark drivers (scripts/bench)."""
import json
import os
import subprocess
import sys


def make_files(root, n):
    """n small files (16-48 bytes), 1000 per directory."""
    for i in range(n):
        d = os.path.join(root, "d%04d" % (i // 1000))
        if i % 1000 == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%07d.txt" % i), "wb") as f:
            f.write(b"target %d %s\n" % (i, b"x" * (i % 32)))


def isolated(cmd):
    """Measures cmd in a fresh Python process so peak RSS is that command's own."""
    code = (
        "import resource,subprocess,sys,time,json;t=time.monotonic();"
        "subprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL,stderr=sys.stderr);w=time.monotonic()-t;"
        "r=resource.getrusage(resource.RUSAGE_CHILDREN);"
        "print(json.dumps([w,r.ru_utime+r.ru_stime,r.ru_maxrss/1024]))"
    )
    out = subprocess.run([sys.executable, "-c", code] + cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("benchmark step failed: %s\n%s" % (" ".join(cmd), out.stderr))
    return json.loads(out.stdout)


