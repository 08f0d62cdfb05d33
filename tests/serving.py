"""Waiting for a server a test started in a subprocess (``celery-gcp worker``, a container's
command) to accept connections."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Any

import pytest


def wait_for_port(proc: subprocess.Popen[Any], port: int, what: str,
                  timeout: float = 30.0) -> None:
    """Return once 127.0.0.1:``port`` accepts a connection; fail the test with ``proc``'s
    output if it exits first or ``timeout`` seconds pass (it is then killed)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                output = [stream.read() for stream in (proc.stdout, proc.stderr) if stream]
                pytest.fail(f"{what} did not serve: {output!r}")
            time.sleep(0.05)
