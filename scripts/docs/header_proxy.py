#!/usr/bin/env python3
"""A logging reverse proxy for docs/propagation.md: put it between two services to see the
headers one sends the other.

    python3 scripts/docs/header_proxy.py headers.jsonl NAME:LISTEN_PORT:TARGET_PORT ...

Each request to 127.0.0.1:LISTEN_PORT is written to headers.jsonl as one JSON line
({"hop": NAME, "method", "path", "headers"}) and forwarded unchanged to 127.0.0.1:TARGET_PORT;
the answer goes back unchanged. Point a service's *_URL variable at LISTEN_PORT. Standard
library only; for a demo, not for traffic.
"""

import http.client
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def handler(log, hop: str, target_port: int):
    class Forward(BaseHTTPRequestHandler):
        def forward(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            log.write(json.dumps({"hop": hop, "method": self.command, "path": self.path,
                                  "headers": dict(self.headers.items())}) + "\n")
            upstream = http.client.HTTPConnection("127.0.0.1", target_port, timeout=30)
            upstream.request(self.command, self.path, body, dict(self.headers.items()))
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                # The body is sent whole, with its own length.
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = forward

        def log_message(self, *args):  # the JSON lines are the log
            pass

    return Forward


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    log = open(sys.argv[1], "a", buffering=1, encoding="utf-8")  # one line per request, flushed
    for spec in sys.argv[2:]:
        hop, listen, target = spec.rsplit(":", 2)
        server = ThreadingHTTPServer(("127.0.0.1", int(listen)), handler(log, hop, int(target)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
