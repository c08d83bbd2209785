"""A CA's rate limit in front of a real Pebble, for test_acme.py; runs inside the rig's container.

Pebble 2.4 has no rate limiter. This front forwards every request to Pebble as it
came, Host header included: Pebble builds its directory's URLs and every Location
from that header (Pebble's wfe/wfe.go, relativeEndpoint), so the ACME client keeps
talking through the front. While the flag file exists, a POST to the directory's
newOrder URL gets what a CA at its limit answers (RFC 8555 sections 6.6 and 6.7):
status 429, a ``urn:ietf:params:acme:error:rateLimited`` problem document and
Retry-After, with a fresh Replay-Nonce from Pebble (an ACME client refuses a
response without one). Each refused order is one line on stderr (the unit's journal).

Usage: acme_ratelimit.py --listen-port P --upstream-port U --cert C --key K --ca A --flag F
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import ssl
import sys
import threading

DIRECTORY_PATH = "/dir"
UPSTREAM_TIMEOUT_S = 30
# Hop-by-hop headers and the ones http.client sets itself.
SKIPPED_HEADERS = {"connection", "content-length", "transfer-encoding", "keep-alive"}
RETRY_AFTER_S = 3600


class Front(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, upstream_port: int, client_context: ssl.SSLContext, flag: str) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.upstream_port = upstream_port
        self.client_context = client_context
        self.flag = flag
        self.directory: dict[str, str] = {}
        self.lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Front

    # http.server dispatches on these names.
    def do_GET(self) -> None:
        self._forward("GET")

    def do_HEAD(self) -> None:
        self._forward("HEAD")

    def do_POST(self) -> None:
        self._forward("POST")

    def _upstream(self, method: str, path: str, body: bytes | None, headers: dict[str, str]
                  ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPSConnection("127.0.0.1", self.server.upstream_port,
                                                 context=self.server.client_context, timeout=UPSTREAM_TIMEOUT_S)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _path_of(self, field: str) -> str:
        """The path of a directory URL (newOrder, newNonce), read from Pebble once."""
        with self.server.lock:
            if not self.server.directory:
                body = self._upstream("GET", DIRECTORY_PATH, None, {"Host": self.headers.get("Host", "")})[2]
                self.server.directory = json.loads(body)
        url = self.server.directory.get(field, "")
        return "/" + url.split("://", 1)[-1].split("/", 1)[-1] if url else ""

    def _forward(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if method == "POST" and os.path.exists(self.server.flag) and self.path == self._path_of("newOrder"):
            self._rate_limited()
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in SKIPPED_HEADERS}
        status, response_headers, response_body = self._upstream(method, self.path, body, headers)
        self.send_response(status)
        for key, value in response_headers:
            if key.lower() not in SKIPPED_HEADERS:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(response_body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response_body)

    def _rate_limited(self) -> None:
        nonce_headers = self._upstream("HEAD", self._path_of("newNonce"), None,
                                       {"Host": self.headers.get("Host", "")})[1]
        nonce = dict((k.lower(), v) for k, v in nonce_headers).get("replay-nonce", "")
        problem = json.dumps({
            "type": "urn:ietf:params:acme:error:rateLimited",
            "detail": "too many new orders for this account recently (the test's rate limit)",
            "status": 429,
        }).encode()
        self.send_response(429)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Retry-After", str(RETRY_AFTER_S))
        self.send_header("Replay-Nonce", nonce)
        self.send_header("Content-Length", str(len(problem)))
        self.end_headers()
        self.wfile.write(problem)
        sys.stderr.write(f"acme_ratelimit: answered POST {self.path} with 429 rateLimited\n")
        sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--flag", required=True)
    args = parser.parse_args(argv)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(args.cert, args.key)
    client_context = ssl.create_default_context(cafile=args.ca)
    front = Front(args.listen_port, args.upstream_port, client_context, args.flag)
    front.socket = server_context.wrap_socket(front.socket, server_side=True)
    front.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
