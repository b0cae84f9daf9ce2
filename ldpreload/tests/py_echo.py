"""A socket + selectors echo, run under libvcl_ldpreload.so by ldpreload/tests/shim.rs.

  py_echo.py server PORT NCLIENTS   selectors (epoll) loop with a kernel pipe in the same set
  py_echo.py client PORT N SIZE     send N messages, compare the echo's sha256
"""

import hashlib
import os
import selectors
import socket
import sys


def server(port, nclients):
    sel = selectors.DefaultSelector()
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(64)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, "listener")
    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    sel.register(rfd, selectors.EVENT_READ, "pipe")
    pipe_events = 0
    done = 0
    pending = {}
    print(f"listening on port {port} ({type(sel).__name__})", flush=True)
    while done < nclients:
        events = sel.select(timeout=10)
        if not events:
            sys.exit("py_echo: idle 10 s")
        for key, mask in events:
            if key.data == "listener":
                conn, _ = lsock.accept()
                conn.setblocking(False)
                pending[conn] = b""
                sel.register(conn, selectors.EVENT_READ, "conn")
                # each accepted client pokes the pipe: the kernel fd must wake the same wait
                os.write(wfd, b"x")
            elif key.data == "pipe":
                pipe_events += len(os.read(rfd, 64))
            else:
                conn = key.fileobj
                if mask & selectors.EVENT_READ:
                    try:
                        data = conn.recv(65536)
                    except BlockingIOError:
                        data = None
                    if data == b"":
                        sel.unregister(conn)
                        conn.close()
                        del pending[conn]
                        done += 1
                        continue
                    if data:
                        pending[conn] += data
                if pending[conn]:
                    try:
                        n = conn.send(pending[conn])
                        pending[conn] = pending[conn][n:]
                    except BlockingIOError:
                        pass
                want = selectors.EVENT_READ | (selectors.EVENT_WRITE if pending[conn] else 0)
                sel.modify(conn, want, "conn")
    if pipe_events != nclients:
        sys.exit(f"py_echo: {pipe_events} pipe events, expected {nclients}")
    print(f"server: {done} clients, {pipe_events} pipe events", flush=True)


def client(port, n, size):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    sent, got = hashlib.sha256(), hashlib.sha256()
    for m in range(n):
        msg = bytes((m * 7 + i) % 251 for i in range(size))
        sent.update(msg)
        s.sendall(msg)
        left = size
        while left:
            b = s.recv(left)
            if not b:
                sys.exit("py_echo: server closed early")
            got.update(b)
            left -= len(b)
    s.close()
    if sent.digest() != got.digest():
        sys.exit("py_echo: sha256 mismatch")
    print(f"client: {n} x {size} bytes, sha256 {got.hexdigest()[:16]} ok", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]), int(sys.argv[3]))
    else:
        client(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
