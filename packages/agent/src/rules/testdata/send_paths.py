"""Real sends for dye_send.bpf.c: one keep-alive connection per send path, to a server in the same
process. python3 stdlib only. Usage: send_paths.py COHORT_ID OTHER_ID
Per path (send, sendto, sendmsg, write, writev) two requests: one with COHORT_ID, one with OTHER_ID; the
server answers 200, or 503 for paths starting with /fail. Then: a request whose trace header is split
across two sends, one large write (256 KiB body: one send that fills many skbs), and three pipelined
requests corked with MSG_MORE (sends that append to an unsent skb).
Prints one JSON line per request: {path, trace_id} in the order sent."""
import json
import os
import socket
import sys
import threading
import time

cohort, other = sys.argv[1], sys.argv[2]


def serve(lst):
    while True:
        try:
            c, _ = lst.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def read_request(c, buf):
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            return None, b""
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        d = c.recv(65536)
        if not d:
            return None, b""
        rest += d
    return head, rest[length:]


def handle(c):
    buf = b""
    while True:
        head, buf = read_request(c, buf)
        if head is None:
            c.close()
            return
        path = head.split(b" ")[1]
        status = b"503 Service Unavailable" if path.startswith(b"/fail") else b"200 OK"
        c.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")


def read_response(s, n=1):
    buf = b""
    while buf.count(b"\r\n\r\nok") < n:
        d = s.recv(4096)
        if not d:
            raise RuntimeError("server closed")
        buf += d


lst = socket.socket()
lst.bind(("127.0.0.1", 0))
lst.listen(16)
port = lst.getsockname()[1]
threading.Thread(target=serve, args=(lst,), daemon=True).start()


def req(path, tid):
    return f"GET {path} HTTP/1.1\r\nHost: shop\r\nX-Trace-Id: {tid}\r\nAccept: */*\r\n\r\n".encode()


def log(path, tid):
    print(json.dumps({"path": path, "trace_id": tid}), flush=True)


senders = {
    "send": lambda s, b: s.send(b),
    "sendto": lambda s, b: s.sendto(b, ("127.0.0.1", port)),
    "sendmsg": lambda s, b: s.sendmsg([b[:10], b[10:30], b[30:]]),
    "write": lambda s, b: os.write(s.fileno(), b),
    "writev": lambda s, b: os.writev(s.fileno(), [b[:7], b[7:]]),
}
for name, send in senders.items():
    s = socket.create_connection(("127.0.0.1", port))
    for i, tid in enumerate((cohort, other)):
        path = f"/{name}/{i}" if i == 0 else f"/fail/{name}"
        send(s, req(path, tid))
        log(path, tid)
        read_response(s)
    s.close()

# the trace header split across two sends
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
b = req("/split", cohort)
cut = b.index(b"X-Trace-Id") + 15
s.send(b[:cut])
time.sleep(0.05)
s.send(b[cut:])
log("/split", cohort)
read_response(s)

# one large write: headers then a 256 KiB body, in one sendall
body = b"x" * (256 * 1024)
head = f"POST /large HTTP/1.1\r\nHost: shop\r\nX-Trace-Id: {cohort}\r\nContent-Length: {len(body)}\r\n\r\n"
s.sendall(head.encode() + body)
log("/large", cohort)
read_response(s)
s.close()

# pipelined requests corked with MSG_MORE: the 2nd and 3rd sends append to the unsent skb of the 1st
s = socket.create_connection(("127.0.0.1", port))
for i, tid in enumerate((cohort, other, cohort)):
    s.send(req(f"/corked/{i}", tid), socket.MSG_MORE if i < 2 else 0)
    log(f"/corked/{i}", tid)
read_response(s, 3)
s.close()
lst.close()
