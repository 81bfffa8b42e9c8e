#!/usr/bin/env python3
"""Host side of the network e2e test's TAP transfers (tests/e2e/net.sh).

usage: netserve.py ADDR SEND_PORT RECV_PORT BLOB OUT [TIMEOUT]
A client connecting to SEND_PORT gets BLOB, then EOF. Everything a client sends to RECV_PORT
until EOF is hashed; "BYTES SHA256" goes to OUT. Exits when both are done, or after TIMEOUT
seconds (default 3000).
"""
import hashlib
import socket
import sys
import threading

addr, send_port, recv_port, blob, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    sys.argv[4], sys.argv[5]
timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 3000.0


def listener(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1)
    s.settimeout(timeout)
    return s


def send(s):
    c, _ = s.accept()
    with c, open(blob, "rb") as f:
        c.sendfile(f)
        c.shutdown(socket.SHUT_WR)


def recv(s):
    c, _ = s.accept()
    h = hashlib.sha256()
    n = 0
    with c:
        c.settimeout(timeout)
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            n += len(b)
            h.update(b)
    with open(out, "w") as f:
        f.write("%d %s\n" % (n, h.hexdigest()))


ls, lr = listener(send_port), listener(recv_port)
threads = [threading.Thread(target=send, args=(ls,), daemon=True),
           threading.Thread(target=recv, args=(lr,), daemon=True)]
for t in threads:
    t.start()
for t in threads:
    t.join(timeout)
