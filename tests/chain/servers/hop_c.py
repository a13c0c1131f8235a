"""Hop C of the chain test (python3, http.server, HTTP/1.1 keep-alive). Answers 200, or 503 when the path
ends with /fail. Reports the SO_MARK of the accepted socket and the request headers it received (the test
checks that B forwarded no trace header) in its JSON body and as one JSON line per request on stdout."""

import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SO_MARK = getattr(socket, "SO_MARK", 36)
LOG = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # http.server writes the head and the body in two sends. With Nagle on, the body of every request after
    # the first on a keep-alive connection waited for the ACK of the head, which B delays: 43 ms a request
    # (measured through the demo chain, 42-50 ms end to end against ~3 ms). Servers meant for traffic set
    # TCP_NODELAY; so does this one.
    disable_nagle_algorithm = True

    def do_GET(self):
        mark = self.connection.getsockopt(socket.SOL_SOCKET, SO_MARK)
        status = 503 if self.path.endswith("/fail") else 200
        headers = sorted(k.lower() for k in self.headers.keys())
        record = {
            "hop": "C",
            "path": self.path,
            "mark": mark,
            "traceHeader": self.headers.get("x-trace-id"),
            "headers": headers,
            "peer": "%s:%d" % self.client_address,
            "tid": threading.get_native_id(),
        }
        body = json.dumps(record).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with LOG:
            print(json.dumps({**record, "status": status}), flush=True)

    def log_message(self, *args):
        pass


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    print(json.dumps({"ready": True, "hop": "C", "pid": os.getpid()}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
