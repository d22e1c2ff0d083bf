"""A loopback HTTP server for dataset-download tests: ranges, basic auth, faults, a request log.

It serves a directory the way the real sources behave where it matters to our downloader:
``Range`` requests answered with 206 and ``Content-Range``, 404 for missing files, 401 for a
protected prefix without the right basic-auth header, and injected faults (a connection cut
after a number of bytes). Every request is logged with the bytes it was sent, so tests can
assert what a resumed download asked for.
"""

from __future__ import annotations

import base64
import http.server
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class LoggedRequest:
    path: str
    range: str | None
    status: int
    bytes_sent: int
    query: str = ""


class _QuietServer(http.server.ThreadingHTTPServer):
    """A threading server that does not print the resets the tests cause on purpose."""

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class FixtureServer:
    root: Path
    requests: list[LoggedRequest] = field(default_factory=list)
    auth: dict[str, tuple[str, str]] = field(default_factory=dict)
    cuts: dict[str, list[int]] = field(default_factory=dict)
    errors: dict[str, list[int]] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 0
    _httpd: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def require_auth(self, prefix: str, user: str, password: str) -> None:
        """Answer 401 under ``prefix`` unless basic auth ``user:password`` is sent."""
        self.auth[prefix] = (user, password)

    def cut_after(self, path: str, nbytes: int, times: int = 1) -> None:
        """The next ``times`` GETs of ``path`` close the connection after ``nbytes`` bytes."""
        self.cuts.setdefault(path, []).extend([nbytes] * times)

    def fail_with(self, path: str, status: int, times: int = 1) -> None:
        """The next ``times`` requests of ``path`` get HTTP ``status`` (e.g. 503, 403)."""
        self.errors.setdefault(path, []).extend([status] * times)

    def requests_for(self, path: str) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path == path]

    def start(self) -> FixtureServer:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _log(self, status: int, sent: int) -> None:
                parts = urlsplit(self.path)
                server.requests.append(
                    LoggedRequest(
                        unquote(parts.path), self.headers.get("Range"), status, sent, parts.query
                    )
                )

            def _deny(self, status: int) -> None:
                body = f"{status}".encode()
                self._log(status, 0)  # logged before any byte of the reply the client acts on
                self.send_response(status)
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="fixture"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self) -> None:
                self.do_GET(head=True)

            def do_GET(self, head: bool = False) -> None:
                path = unquote(urlsplit(self.path).path)
                for prefix, (user, password) in server.auth.items():
                    if path.startswith(prefix):
                        token = base64.b64encode(f"{user}:{password}".encode()).decode()
                        if self.headers.get("Authorization") != f"Basic {token}":
                            self._deny(401)
                            return
                if server.errors.get(path):
                    self._deny(server.errors[path].pop(0))
                    return
                file = (server.root / path.lstrip("/")).resolve()
                if not file.is_file() or not file.is_relative_to(server.root.resolve()):
                    self._deny(404)
                    return
                data = file.read_bytes()
                size = len(data)
                start, end, status = 0, size - 1, 200
                requested = self.headers.get("Range")
                if requested:
                    match = re.match(r"bytes=(\d+)-(\d*)$", requested)
                    if match:
                        start = int(match[1])
                        end = int(match[2]) if match[2] else size - 1
                        if start >= size:
                            self._log(416, 0)
                            self.send_response(416)
                            self.send_header("Content-Range", f"bytes */{size}")
                            self.send_header("Content-Length", "0")
                            self.end_headers()
                            return
                        status = 206
                body = data[start : end + 1]
                cuts = server.cuts.get(path)
                limit = cuts.pop(0) if cuts and not head else None
                sent = 0 if head else len(body) if limit is None else min(limit, len(body))
                self._log(status, sent)
                self.send_response(status)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(end - start + 1))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                self.end_headers()
                if head:
                    return
                if limit is not None:
                    self.wfile.write(body[:limit])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self._httpd = _QuietServer((self.host, 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
