#!/usr/bin/env bash
# snapshot.sh: snapshot restore latency against a cold boot of the same guest, snapshot create
# time against cp of the same bytes, and the restored VMM's memory.
#
# Usage: bench/snapshot.sh KILN FLOOD_GUEST [RUNS]     (RUNS default 10, at least 10)
# The guest is tests/guests/flood.elf: it writes to COM1 without a pause, so its first serial
# byte after a restore comes from its first instructions. For each size (128 MiB and 2 GiB,
# 1 vCPU; 128 MiB with 2 vCPUs) one `kiln api` boots it, pauses it and takes a Full snapshot
# (timed, beside `cp --sparse=always` of the memory file and a plain cp of its data). Then each
# run starts a fresh `kiln api` and sends PUT /snapshot/load {"resume_vm": true}:
#   load -> first byte   from sending the request to the first serial byte on kiln's stdout
#   exec -> first byte   from the exec of kiln to the same byte (what a platform that spawns a
#                        kiln per VM pays: exec, the socket, the load)
# beside the cold boot: exec of `kiln run` with the same guest and size to its first serial
# byte. Medians of RUNS, interleaved. RSS is read at the first byte (VmRSS, guest RAM
# included: the restored VM maps only the pages it touched).
set -euo pipefail
kiln=${1:?usage: snapshot.sh KILN FLOOD_GUEST [RUNS]}
guest=${2:?usage: snapshot.sh KILN FLOOD_GUEST [RUNS]}
runs=${3:-10}
[ -x "$kiln" ] || { echo "bench/snapshot.sh: no kiln at $kiln" >&2; exit 1; }
[ -f "$guest" ] || { echo "bench/snapshot.sh: no guest at $guest" >&2; exit 1; }
[ "$runs" -ge 10 ] || { echo "bench/snapshot.sh: RUNS must be at least 10" >&2; exit 1; }

exec python3 - "$kiln" "$guest" "$runs" <<'EOF'
import json, os, select, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

kiln, guest, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])

def request(sock, method, path, body=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    if body is None:
        data = (head + "\r\n").encode()
    else:
        b = json.dumps(body).encode()
        data = (head + f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b
    s.sendall(data)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    status = int(out.split(b" ", 2)[1])
    if status >= 300:
        sys.exit(f"{method} {path}: {out.decode(errors='replace')}")
    return status

def start_api(d, stdout):
    sock = os.path.join(d, "api.sock")
    t0 = time.perf_counter()
    p = subprocess.Popen([kiln, "api", "--api-sock", sock], stdin=subprocess.DEVNULL,
                         stdout=stdout, stderr=subprocess.DEVNULL)
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sock)
            s.close()
            return p, sock, t0
        except OSError:
            s.close()
            if p.poll() is not None:
                sys.exit("kiln api exited early")
            if time.perf_counter() - t0 > 10:
                sys.exit("socket not ready after 10 s")
            time.sleep(0.0002)

def first_byte(p, t_from):
    fd = p.stdout.fileno()
    r, _, _ = select.select([fd], [], [], 20)
    if not r:
        sys.exit("no serial byte within 20 s")
    t = time.perf_counter()
    os.read(fd, 1)
    return t - t_from, t

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def stop(p):
    p.send_signal(signal.SIGKILL)
    p.wait(10)

def make_snapshot(d, mib, cpus):
    p, sock, _ = start_api(d, subprocess.DEVNULL)
    request(sock, "PUT", "/boot-source", {"kernel_image_path": guest})
    request(sock, "PUT", "/machine-config", {"vcpu_count": cpus, "mem_size_mib": mib})
    request(sock, "PUT", "/serial", {"serial_out_path": "/dev/null"})
    request(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
    time.sleep(0.3)
    request(sock, "PATCH", "/vm", {"state": "Paused"})
    snap, mem = os.path.join(d, "vm.snap"), os.path.join(d, "vm.mem")
    t = time.perf_counter()
    request(sock, "PUT", "/snapshot/create", {"snapshot_path": snap, "mem_file_path": mem})
    create = time.perf_counter() - t
    stop(p)
    return snap, mem, create

def cp_time(src, d, sparse):
    dst = os.path.join(d, "copy.mem")
    t = time.perf_counter()
    subprocess.run(["cp", "--sparse=always" if sparse else "--sparse=never", src, dst], check=True)
    with open(dst, "rb+") as f:
        os.fsync(f.fileno())
    dt = time.perf_counter() - t
    os.unlink(dst)
    return dt

def cold(mib, cpus):
    t0 = time.perf_counter()
    p = subprocess.Popen([kiln, "run", "--kernel", guest, "--memory", f"{mib}M", "--cpus", str(cpus)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    dt, _ = first_byte(p, t0)
    rss = rss_kib(p.pid)
    stop(p)
    return dt, rss

def restore(snap, mem):
    d = tempfile.mkdtemp(prefix="kiln-bench-restore.")
    p, sock, t_exec = start_api(d, subprocess.PIPE)
    t_load = time.perf_counter()
    request(sock, "PUT", "/snapshot/load", {"snapshot_path": snap, "mem_backend":
            {"backend_type": "File", "backend_path": mem}, "resume_vm": True})
    _, t_first = first_byte(p, t_load)
    rss = rss_kib(p.pid)
    stop(p)
    shutil.rmtree(d, ignore_errors=True)
    return t_first - t_load, t_first - t_exec, rss

def med(xs):
    return statistics.median(xs)

print(f"snapshots: flood guest, {runs} runs per size, interleaved with cold boots; medians")
print(f"{'guest':<18} {'load->1st byte':>15} {'exec->1st byte':>15} {'cold boot':>10} "
      f"{'restored RSS':>13} {'cold RSS':>9}")
rows = {}
for mib, cpus in ((128, 1), (2048, 1), (128, 2)):
    d = tempfile.mkdtemp(prefix="kiln-bench-snap.")
    snap, mem, create = make_snapshot(d, mib, cpus)
    load, exe, rr, cb, cr = [], [], [], [], []
    for _ in range(runs):
        a, b, r = restore(snap, mem)
        load.append(a); exe.append(b); rr.append(r)
        c, rc = cold(mib, cpus)
        cb.append(c); cr.append(rc)
    rows[(mib, cpus)] = med(load)
    st = os.stat(mem)
    sparse_cp = cp_time(mem, d, True)
    full_cp = cp_time(mem, d, False)
    print(f"{mib:>5} MiB {cpus} vCPU   {med(load)*1e3:12.3f} ms {med(exe)*1e3:12.3f} ms "
          f"{med(cb)*1e3:7.3f} ms {med(rr)/1024:10.1f} MiB {med(cr)/1024:6.1f} MiB")
    print(f"{'':<18} Full snapshot create {create*1e3:.1f} ms (memory file {st.st_size >> 20} MiB, "
          f"{st.st_blocks * 512 >> 10} KiB allocated); cp --sparse=always + fsync "
          f"{sparse_cp*1e3:.1f} ms, cp of every byte + fsync {full_cp*1e3:.1f} ms")
    shutil.rmtree(d, ignore_errors=True)
print(f"2 GiB / 128 MiB restore (load -> first byte): {rows[(2048, 1)] / rows[(128, 1)]:.2f}")
EOF
