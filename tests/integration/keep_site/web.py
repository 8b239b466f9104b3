"""A web node for the keep tests: answers every GET with its node's name."""

import http.server
import os
import sys
import threading

port, name, crash_flag = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-By", name)
        # Headers and body in one write: a kill -9 lands before the answer (the load
        # balancer sends the GET elsewhere) or after it. An app killed halfway through an
        # answer loses that answer, which no load balancer can save; not what is tested.
        self._headers_buffer.append(b"\r\n" + body)  # type: ignore[attr-defined]
        self.flush_headers()

    def log_message(self, *args: object) -> None:
        pass


if os.path.exists(crash_flag):  # the crash loop of test_keep_heal
    threading.Timer(0.3, lambda: os._exit(3)).start()
http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
