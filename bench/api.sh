#!/usr/bin/env bash
# api.sh: REST API latency: exec of `kiln api` to its socket accepting, and request round trips
# (GET / and PUT /machine-config, a new connection per request as curl makes), min/median/max.
#
# Usage: bench/api.sh [KILN] [RUNS]      (defaults: build/kiln, 20 runs)
# Each run starts a fresh kiln, measures the time until connect() on the socket succeeds
# (polled every 0.2 ms), then times REQS requests of each kind, and stops kiln with SIGTERM.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kiln=${1:-$here/../build/kiln}
runs=${2:-20}
reqs=${REQS:-50}
[ -x "$kiln" ] || { echo "bench/api.sh: no kiln at $kiln (build it first)" >&2; exit 1; }
[ "$runs" -ge 10 ] || { echo "bench/api.sh: RUNS must be at least 10" >&2; exit 1; }

exec python3 - "$kiln" "$runs" "$reqs" <<'EOF'
import os, signal, socket, statistics, subprocess, sys, tempfile, time

kiln, runs, reqs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def request(path_sock, raw):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path_sock)
    s.sendall(raw)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    status = int(data.split(b" ", 2)[1])
    return status

def raw(method, path, body=None):
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    if body is None:
        return (head + "\r\n").encode()
    b = body.encode()
    return (head + f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b

get_root = raw("GET", "/")
put_mc = raw("PUT", "/machine-config", '{"vcpu_count": 2, "mem_size_mib": 256}')
ready, rt_get, rt_put = [], [], []
for _ in range(runs):
    d = tempfile.mkdtemp(prefix="kiln-bench-api.")
    sock = os.path.join(d, "api.sock")
    t0 = time.perf_counter()
    p = subprocess.Popen([kiln, "api", "--api-sock", sock], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sock)
            s.close()
            break
        except OSError:
            s.close()
            if p.poll() is not None:
                sys.exit("kiln api exited early")
            if time.perf_counter() - t0 > 10:
                sys.exit("socket not ready after 10 s")
            time.sleep(0.0002)
    ready.append(time.perf_counter() - t0)
    for _ in range(reqs):
        t = time.perf_counter()
        assert request(sock, get_root) == 200
        rt_get.append(time.perf_counter() - t)
        t = time.perf_counter()
        assert request(sock, put_mc) == 204
        rt_put.append(time.perf_counter() - t)
    p.send_signal(signal.SIGTERM)
    p.wait(10)
    os.rmdir(d) if not os.listdir(d) else None

def line(name, xs, unit, scale):
    xs = sorted(xs)
    print(f"{name:<34} min {xs[0]*scale:8.3f} {unit}  median {statistics.median(xs)*scale:8.3f} {unit}"
          f"  max {xs[-1]*scale:8.3f} {unit}  (n={len(xs)})")

print(f"kiln api: {runs} runs, {reqs} requests of each kind per run, new connection per request")
line("exec -> API socket accepting", ready, "ms", 1e3)
line("GET / round trip", rt_get, "us", 1e6)
line("PUT /machine-config round trip", rt_put, "us", 1e6)
EOF
