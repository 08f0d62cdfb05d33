"""Run the third-party ``gcloud-tasks-emulator`` bound to a loopback address only.

This file runs under the *emulator's own* virtualenv python (see
``gcloud_tasks_emulator.py`` beside it), never under the project's: it imports the
emulator's pinned ``grpc`` and ``gcloud_tasks_emulator``. It must be started with
``python -I`` so that this folder, which holds our helper module also named
``gcloud_tasks_emulator``, is not put on ``sys.path`` ahead of the real package.

Why a wrapper: ``gcloud_tasks_emulator.server.APIThread.run`` (0.6.2) ignores the ``host``
it is given and calls ``server.add_insecure_port(f"[::]:{port}")``, so it listens on every
interface, and its CLI has no option to change that. Here ``grpc.server`` is wrapped before
the emulator starts: the server it returns rewrites any address given to
``add_insecure_port`` to ``--bind-host`` (loopback, enforced) with the same port, and
refuses ``add_secure_port``. Port ``0`` picks a free port; once the gRPC server has started,
the bound port is written (atomically) to ``--port-file``.

Lifetime: the process stops gracefully when its standard input reaches end of file (the
parent closed the pipe, or the parent died) or on SIGTERM/SIGINT.

Usage::

    python -I _gcloud_tasks_emulator_loopback.py --port-file F [--bind-host 127.0.0.1] \
        start --port 0 --target-host 127.0.0.1 --target-port 8123
"""

from __future__ import annotations

import _thread
import argparse
import ipaddress
import os
import signal
import sys
import threading
from typing import Any

import grpc  # the emulator venv's grpc

# Backstop: if a graceful stop has not ended the process by then, exit anyway.
_GRACEFUL_STOP_SECONDS = 5.0
_BIND_FAILED_EXIT = 70


def _write_port_file(path: str, port: int) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def _install_loopback_grpc(bind_host: str, port_file: str) -> None:
    real_server = grpc.server

    def loopback_server(*args: Any, **kwargs: Any) -> Any:
        server = real_server(*args, **kwargs)
        real_add_insecure_port = server.add_insecure_port
        real_start = server.start
        bound: list[int] = []

        def add_insecure_port(address: str) -> int:
            _, _, port = address.rpartition(":")
            address = f"[{bind_host}]:{port}" if ":" in bind_host else f"{bind_host}:{port}"
            try:
                bound_port = int(real_add_insecure_port(address))
            except RuntimeError as exc:  # grpc >= 1.5x raises; older versions return 0
                print(f"[loopback-wrapper] cannot bind {address}: {exc}", file=sys.stderr)
                os._exit(_BIND_FAILED_EXIT)
            if not bound_port:
                print(f"[loopback-wrapper] cannot bind {address}", file=sys.stderr)
                os._exit(_BIND_FAILED_EXIT)
            print(f"[loopback-wrapper] gRPC bound to {bind_host}:{bound_port}", file=sys.stderr)
            bound.append(bound_port)
            return bound_port

        def add_secure_port(address: str, credentials: Any) -> int:
            raise RuntimeError("the loopback wrapper only allows add_insecure_port")

        def start() -> None:
            real_start()
            if bound:
                _write_port_file(port_file, bound[0])

        server.add_insecure_port = add_insecure_port
        server.add_secure_port = add_secure_port
        server.start = start
        return server

    grpc.server = loopback_server


def _stop_when_stdin_closes() -> None:
    """Interrupt the main thread (the emulator's ``run`` loop) once stdin hits EOF."""

    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        _thread.interrupt_main()  # KeyboardInterrupt: the emulator's run() stops its threads
        threading.Event().wait(_GRACEFUL_STOP_SECONDS)
        os._exit(1)  # only reached if the graceful stop hung (e.g. a dispatch that never ends)

    threading.Thread(target=watch, name="stdin-watchdog", daemon=True).start()


def main() -> None:
    # allow_abbrev=False: "--port" (for the emulator) must not be taken for "--port-file".
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--bind-host", default="127.0.0.1")
    parser.add_argument("--port-file", required=True)
    args, emulator_argv = parser.parse_known_args()
    if not ipaddress.ip_address(args.bind_host).is_loopback:
        parser.error(f"--bind-host must be a loopback address, not {args.bind_host!r}")

    _install_loopback_grpc(args.bind_host, args.port_file)
    # SIGINT may be inherited as ignored (e.g. started in the background by a shell), and then
    # interrupt_main() below does nothing: make both SIGINT and SIGTERM stop the emulator.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    _stop_when_stdin_closes()

    from gcloud_tasks_emulator.__main__ import (  # type: ignore[import-not-found]
        main as emulator_main,
    )

    sys.argv = ["gcloud-tasks-emulator", *emulator_argv]
    emulator_main()


if __name__ == "__main__":
    main()
