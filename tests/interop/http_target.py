"""A real HTTP server on loopback, in a thread, that records the requests it receives."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from .gcloud_tasks_emulator import LOOPBACK

__all__ = ["ReceivedRequest", "RecordingHTTPTarget"]


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    received_at: float  # time.time() when the request was read

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


class RecordingHTTPTarget:
    """``with RecordingHTTPTarget() as target:`` serves on ``target.url(path)``.

    Every request gets ``status`` (200 by default) and is recorded; :meth:`wait_for` blocks,
    bounded, until enough have arrived. ``port`` may be a :class:`PortReservation`'s port.
    """

    def __init__(self, *, host: str = LOOPBACK, port: int = 0, status: int = 200) -> None:
        self.status = status
        self.requests: list[ReceivedRequest] = []
        self._arrived = threading.Condition()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = ReceivedRequest(
                    method=self.command,
                    path=self.path,
                    headers=tuple(self.headers.items()),
                    body=body,
                    received_at=time.time(),
                )
                self.send_response(target.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with target._arrived:
                    target.requests.append(request)
                    target._arrived.notify_all()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _record

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet test output

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host: str = host
        self.port: int = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"http-target-{self.port}", daemon=True,
        )
        self._thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def wait_for(self, count: int = 1, timeout: float = 15.0) -> list[ReceivedRequest]:
        """Block until ``count`` requests have arrived (``TimeoutError`` after ``timeout``)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(
                    f"{len(self.requests)} of {count} request(s) reached {self.url()} "
                    f"within {timeout} s"
                )
            return list(self.requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> RecordingHTTPTarget:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
