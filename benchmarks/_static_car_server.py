"""A minimal static loopback server for the gateway-client benchmark: every GET gets the
same prepared CAR body (``sendfile``), so the client's own cost is what is measured.

    python -m benchmarks._static_car_server BODY.car   # prints "listening http://127.0.0.1:PORT"
"""

from __future__ import annotations

import http.server
import os
import sys
from typing import Any

CAR_TYPE = "application/vnd.ipld.car; version=1; order=dfs; dups=n"


def main() -> int:
    body = sys.argv[1]
    size = os.path.getsize(body)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", CAR_TYPE)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.flush()
            with open(body, "rb") as fh:
                try:
                    self.connection.sendfile(fh)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"listening http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
