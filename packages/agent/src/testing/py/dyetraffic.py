"""Test traffic for the dye engine's real-kernel tests (python3 stdlib only). Nothing here touches a BPF map:
every dye comes from the engine's own send path (a rule matching the request's x-trace-id), its TCP option,
and thread inheritance.

server PORT [FORWARD_HOST:PORT]   thread-per-connection HTTP/1.1 keep-alive server; per request it answers
                                  JSON {mark, forwarded?}; with FORWARD it first opens a NEW connection to
                                  FORWARD, does one GET there and closes it (a service that forwards nothing:
                                  no header is copied, the dye can only be inherited). Listens on 0.0.0.0,
                                  or on BIND_ADDR from the environment (an IPv6 one: IPv6 only)
client HOST:PORT ID[,ID...] [PRIMER_ID]  (HOST: an IPv4 or IPv6 address, no brackets)
                                  one keep-alive connection, one GET per ID, each with `x-trace-id: ID`
                                  (`-`: no trace header). With PRIMER_ID the client first acts as a service:
                                  its main thread reads one request carrying `x-trace-id: PRIMER_ID`, sent to
                                  it over loopback by another thread, so that (when a rule matches PRIMER_ID)
                                  the thread inherits that dye and its connection is born dyed (SYN option).
                                  Prints one JSON line per request. With BODY_BYTES=N in the environment each
                                  request is a POST with N bytes of body, sent with its header in one send.
                                  With HOLD_AFTER=K, after K requests it waits for a line on stdin (the
                                  connection stays open meanwhile).
"""
import json
import os
import socket
import sys
import threading
import http.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SO_MARK = 36


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    forward = None

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()

    def do_GET(self):
        out = {"mark": self.connection.getsockopt(socket.SOL_SOCKET, SO_MARK)}
        if self.forward:
            host, port = self.forward
            c = http.client.HTTPConnection(host, port, timeout=5)
            c.request("GET", "/onward")  # no trace header: the onward request can only inherit
            r = c.getresponse()
            out["forwarded"] = json.loads(r.read())
            c.close()
        body = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def server(port, forward=None):
    if forward:
        host, p = forward.rsplit(":", 1)
        Handler.forward = (host, int(p))
    bind = os.environ.get("BIND_ADDR", "0.0.0.0")
    server_class = ThreadingHTTPServer
    if ":" in bind:
        server_class = type("Server6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
    srv = server_class((bind, int(port)), Handler)
    print("ready", flush=True)
    srv.serve_forever()


BODY_BYTES = int(os.environ.get("BODY_BYTES", "0"))
HOLD_AFTER = int(os.environ.get("HOLD_AFTER", "0"))


def request(i, trace_id):
    header = "" if trace_id == "-" else f"x-trace-id: {trace_id}\r\n"
    if BODY_BYTES:
        head = f"POST /r{i} HTTP/1.1\r\nHost: x\r\n{header}Content-Length: {BODY_BYTES}\r\n\r\n"
        return head.encode() + b"x" * BODY_BYTES
    return f"GET /r{i} HTTP/1.1\r\nHost: x\r\n{header}\r\n".encode()


def prime(trace_id):
    """This thread reads one request with trace_id on an accepted loopback socket (sent by a helper thread)."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    port = lst.getsockname()[1]

    def send():
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(f"GET /primer HTTP/1.1\r\nHost: x\r\nx-trace-id: {trace_id}\r\n\r\n".encode())
            c.recv(1)  # until the reader closes

    helper = threading.Thread(target=send)
    helper.start()
    conn, _ = lst.accept()
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = conn.recv(4096)
        if not chunk:
            break
        got += chunk
    conn.close()
    helper.join()
    lst.close()


def client(target, ids, primer=None):
    host, port = target.rsplit(":", 1)
    if primer:
        prime(primer)
    s = socket.create_connection((host, int(port)))
    f = s.makefile("rb")
    for i, trace_id in enumerate(ids.split(",")):
        s.sendall(request(i, trace_id))
        status = f.readline()
        length = 0
        while True:
            line = f.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode().partition(":")
            if k.lower() == "content-length":
                length = int(v)
        body = json.loads(f.read(length))
        mark = s.getsockopt(socket.SOL_SOCKET, SO_MARK)
        print(json.dumps({"i": i, "trace_id": trace_id, "status": status.decode().split()[1], "client_mark": mark, "server": body}), flush=True)
        if i + 1 == HOLD_AFTER:
            sys.stdin.readline()
    s.close()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "server":
        server(*sys.argv[2:])
    elif mode == "client":
        client(*sys.argv[2:])
    else:
        sys.exit(f"unknown mode {mode}")
