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
#
# Diff snapshots use tests/guests/dirty.elf (beside FLOOD_GUEST; DIRTY_GUEST overrides it): it
# rewrites the same 1 % of its RAM, one word per 4 KiB page, pass after pass, with a '.' on
# COM1 after each pass. For 128 MiB and 2 GiB (1 vCPU, track_dirty_pages) one `kiln api` boots
# it, pauses after two passes and takes a Full snapshot (timed); then RUNS times: resume, wait
# for two more '.' (one whole pass since the resume), pause, time a Diff create. The Diff
# memory file's allocated size (st_blocks) must be at least 1 % of RAM, else the bench fails.
# Then `kiln snapshot-rebase` merges the first Diff onto a copy of the Full memory file and a
# fresh `kiln api` loads the Diff's state with it; the guest checks every page of its region
# in its next pass and prints FAIL if one is stale, so two '.' and no FAIL mean it restored.
set -euo pipefail
kiln=${1:?usage: snapshot.sh KILN FLOOD_GUEST [RUNS]}
guest=${2:?usage: snapshot.sh KILN FLOOD_GUEST [RUNS]}
runs=${3:-10}
[ -x "$kiln" ] || { echo "bench/snapshot.sh: no kiln at $kiln" >&2; exit 1; }
[ -f "$guest" ] || { echo "bench/snapshot.sh: no guest at $guest" >&2; exit 1; }
[ "$runs" -ge 10 ] || { echo "bench/snapshot.sh: RUNS must be at least 10" >&2; exit 1; }
dirty_guest=${DIRTY_GUEST:-$(dirname "$guest")/dirty.elf}
[ -f "$dirty_guest" ] || { echo "bench/snapshot.sh: no dirty guest at $dirty_guest" >&2; exit 1; }

exec python3 - "$kiln" "$guest" "$runs" "$dirty_guest" <<'EOF'
import atexit, json, os, re, select, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

kiln, guest, runs, dirty_guest = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

# a bench that fails (sys.exit) leaves no kiln running its guest on
apis = []
atexit.register(lambda: [a.kill() for a in apis if a.poll() is None])

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
    apis.append(p)
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

# --- Diff snapshots: the dirty guest ------------------------------------------------------------

def serial_state(path):
    """(region bytes, passes seen) from the dirty guest's COM1 log; exits on FAIL."""
    with open(path, "rb") as f:
        text = f.read().decode(errors="replace")
    if "FAIL" in text:
        sys.exit("dirty guest: " + text[text.index("FAIL"):].splitlines()[0])
    m = re.search(r"READY dirty ram 0x([0-9a-f]+) region 0x([0-9a-f]+) 0x([0-9a-f]+) pages", text)
    if not m:
        return None, 0
    return int(m.group(3), 16), text[m.end():].count(".")

def wait_passes(path, want, what):
    t0 = time.perf_counter()
    while True:
        region, passes = serial_state(path)
        if passes >= want:
            return region, passes
        if time.perf_counter() - t0 > 30:
            sys.exit(f"dirty guest: {passes} passes after 30 s, {want} wanted ({what})")
        time.sleep(0.002)

def allocated(path):
    return os.stat(path).st_blocks * 512

def diff_run(d, mib):
    p, sock, _ = start_api(d, subprocess.DEVNULL)
    log = os.path.join(d, "serial.log")
    request(sock, "PUT", "/boot-source", {"kernel_image_path": dirty_guest})
    request(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": mib,
                                             "track_dirty_pages": True})
    request(sock, "PUT", "/serial", {"serial_out_path": log})
    request(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
    region, _ = wait_passes(log, 2, "after boot")
    request(sock, "PATCH", "/vm", {"state": "Paused"})
    full_snap, full_mem = os.path.join(d, "full.snap"), os.path.join(d, "full.mem")
    t = time.perf_counter()
    request(sock, "PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": full_snap,
                                              "mem_file_path": full_mem})
    full = time.perf_counter() - t
    creates, allocs = [], []
    for i in range(runs):
        _, seen = serial_state(log)
        request(sock, "PATCH", "/vm", {"state": "Resumed"})
        # the first '.' may end a pass begun before the pause; the second ends a whole one
        wait_passes(log, seen + 2, f"Diff {i + 1}")
        request(sock, "PATCH", "/vm", {"state": "Paused"})
        snap, mem = os.path.join(d, f"diff{i}.snap"), os.path.join(d, f"diff{i}.mem")
        t = time.perf_counter()
        request(sock, "PUT", "/snapshot/create", {"snapshot_type": "Diff", "snapshot_path": snap,
                                                  "mem_file_path": mem})
        creates.append(time.perf_counter() - t)
        allocs.append(allocated(mem))
        if os.stat(mem).st_size != mib << 20:
            sys.exit(f"Diff {i + 1}: memory file is {os.stat(mem).st_size} bytes, not {mib} MiB")
        if i > 0:  # the first stays for the rebase below
            os.unlink(snap); os.unlink(mem)
    stop(p)
    one_pct = -(-(mib << 20) // 100)
    if region < one_pct:
        sys.exit(f"dirty guest: region {region} bytes is less than 1 % of {mib} MiB ({one_pct})")
    short = [a for a in allocs if a < one_pct]
    if short:
        sys.exit(f"{mib} MiB: Diff memory file holds {min(short)} bytes, less than 1 % of RAM "
                 f"({one_pct} bytes dirtied): the Diff lost dirtied pages")
    return region, full, allocated(full_mem), creates, allocs

def diff_restore(d, mib):
    """Full + first Diff merged with kiln snapshot-rebase, then loaded: (rebase s, load -> 1st
    byte s, load -> two checked passes s)."""
    merged = os.path.join(d, "merged.mem")
    subprocess.run(["cp", "--sparse=always", os.path.join(d, "full.mem"), merged], check=True)
    t = time.perf_counter()
    subprocess.run([kiln, "snapshot-rebase", "--base-file", merged, "--diff-file",
                    os.path.join(d, "diff0.mem")], check=True, stdout=subprocess.DEVNULL)
    rebase = time.perf_counter() - t
    rd = tempfile.mkdtemp(prefix="kiln-bench-restore.")
    p, sock, _ = start_api(rd, subprocess.PIPE)
    t_load = time.perf_counter()
    request(sock, "PUT", "/snapshot/load", {"snapshot_path": os.path.join(d, "diff0.snap"),
            "mem_backend": {"backend_type": "File", "backend_path": merged}, "resume_vm": True})
    out, first = b"", None
    fd = p.stdout.fileno()
    # the first '.' may end the pass the snapshot cut; the second ends a whole checked one
    while out.count(b".") < 2 and not re.search(rb"FAIL[^\n]*\n", out):
        r, _, _ = select.select([fd], [], [], 30)
        if first is None and r:
            first = time.perf_counter() - t_load
        if not r:
            sys.exit(f"{mib} MiB: restored from Full + Diff, no pass within 30 s")
        chunk = os.read(fd, 4096)
        if not chunk:
            sys.exit(f"{mib} MiB: restored from Full + Diff, kiln exited with "
                     f"{p.wait(10)} after {out.count(b'.')} passes: "
                     + out.decode(errors="replace").strip()[-200:])
        out += chunk
    two = time.perf_counter() - t_load
    stop(p)
    shutil.rmtree(rd, ignore_errors=True)
    if b"FAIL" in out:
        sys.exit(f"{mib} MiB: restored from Full + Diff: "
                 + out[out.index(b"FAIL"):].decode(errors="replace").splitlines()[0])
    return rebase, first, two

print()
print(f"Diff snapshots: dirty guest (rewrites a fixed 1 % of RAM, one word per 4 KiB page, per "
      f"pass), 1 vCPU, track_dirty_pages; Diff after one whole pass, medians of {runs}")
print(f"{'guest':<18} {'Full create':>12} {'Diff create':>12} {'Diff allocated':>15} "
      f"{'1 % of RAM':>11} {'Full allocated':>15}")
for mib in (128, 2048):
    d = tempfile.mkdtemp(prefix="kiln-bench-diff.")
    region, full, full_alloc, creates, allocs = diff_run(d, mib)
    rebase, first, two = diff_restore(d, mib)
    one_pct = -(-(mib << 20) // 100)
    alloc = int(med(allocs))
    print(f"{mib:>5} MiB 1 vCPU   {full*1e3:9.1f} ms {med(creates)*1e3:9.1f} ms "
          f"{alloc >> 10:11} KiB {one_pct >> 10:7} KiB {full_alloc >> 10:11} KiB")
    print(f"{'':<18} Diff create min {min(creates)*1e3:.1f} / max {max(creates)*1e3:.1f} ms; "
          f"region {region >> 10} KiB ({region >> 12} pages), the Diff holds "
          f"{(alloc - region) >> 12} more page(s) (stack, data)")
    print(f"{'':<18} Full + Diff: snapshot-rebase {rebase*1e3:.1f} ms (exec included); restored: "
          f"load -> first byte {first*1e3:.3f} ms, -> two passes checked {two*1e3:.1f} ms")
    shutil.rmtree(d, ignore_errors=True)
EOF
