"""UDP with python3's socket module, run under libvcl_ldpreload.so by ldpreload/tests/udp.rs.

  py_udp.py server PORT           selectors (epoll) loop: echo every datagram to its sender
  py_udp.py client PORT N MODE    MODE connected | unconnected: N datagrams, each carrying its
                                  sequence number and sha256, every echo compared
"""

import hashlib
import selectors
import socket
import sys


def server(port):
    sel = selectors.DefaultSelector()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    print("py udp server ready", flush=True)
    while True:
        for _key, _ in sel.select():
            while True:
                try:
                    data, peer = s.recvfrom(65536)
                except BlockingIOError:
                    break
                s.sendto(data, peer)


def client(port, n, connected):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    srv = ("127.0.0.1", port)
    assert s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_DGRAM
    if connected:
        s.connect(srv)
    else:
        s.bind(("127.0.0.1", 0))  # see the README on an unbound socket's first sendto
    for seq in range(n):
        size = 1 + (seq * 7919) % 4000
        body = bytes((seq * 13 + i) & 0xFF for i in range(size))
        msg = seq.to_bytes(4, "little") + hashlib.sha256(body).digest() + body
        for _attempt in range(5):
            if connected:
                s.send(msg)
            else:
                s.sendto(msg, srv)
            try:
                while True:
                    got, peer = s.recvfrom(65536)
                    if int.from_bytes(got[:4], "little") < seq:
                        continue  # a late echo of an earlier attempt
                    break
            except socket.timeout:
                continue
            assert peer == srv, f"echo from {peer}"
            assert got == msg, f"datagram {seq} came back changed"
            break
        else:
            sys.exit(f"datagram {seq}: no echo after 5 tries")
    print(f"py udp client ok {n}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]))
    else:
        client(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "connected")
