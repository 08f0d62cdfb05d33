"""Run the third-party ``gcloud-tasks-emulator`` (PyPI) for interop tests.

Our client code must not be tested only against our own emulator, so interop tests talk to
``gcloud-tasks-emulator`` too. Its pins (``protobuf<5``, ``google-cloud-tasks<3``) clash with
ours, so it runs as a separate process from its own virtualenv:

- :func:`ensure_venv` creates that virtualenv once (``$CELERY_GCP_INTEROP_VENV``, default
  ``<repo>/.venv-interop``), under a lock so concurrent test processes do not race.
- :class:`GcloudTasksEmulator` starts it on a free loopback port, waits (bounded) until its
  gRPC port accepts connections, and stops it.

The emulator listens on every interface by default and has no option to change that, so it
is started through ``_gcloud_tasks_emulator_loopback.py``, which makes it bind
``127.0.0.1`` only.

Dispatch targets, as the emulator (0.6.2) chooses them:

- HTTP tasks (``Task.http_request``, what Cloud Run workers get) go to the task's own
  ``http_request.url``: point it at a server on ``127.0.0.1``.
- App Engine tasks (``Task.app_engine_http_request``) go to
  ``http://{target_host}:{target_port}{relative_uri}``, fixed per emulator process by its
  ``--target-host``/``--target-port`` options: :class:`GcloudTasksEmulator` arguments.

Known quirks of the emulator: it ignores queue retry config (a 4xx/5xx response is retried
every 0.1 s, forever), ignores task-name deduplication, and a queue that is deleted and
created again never dispatches again. So every test uses a fresh queue: :func:`unique_queue_id`.
Header differences from Cloud Tasks: ``X-CloudTasks-QueueName`` is the full queue path
(``projects/P/locations/L/queues/Q``), not the queue id.

Command line (used by CI to build the virtualenv before pytest)::

    python tests/interop/gcloud_tasks_emulator.py ensure-venv
    python tests/interop/gcloud_tasks_emulator.py run --target-port 8080   # manual use
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

__all__ = [
    "LOOPBACK",
    "REQUIREMENT",
    "GcloudTasksEmulator",
    "PortReservation",
    "ensure_venv",
    "interop_venv_path",
    "unique_queue_id",
]

REQUIREMENT = "gcloud-tasks-emulator==0.6.2"
VENV_ENV_VAR = "CELERY_GCP_INTEROP_VENV"
LOOPBACK = "127.0.0.1"

REPO_ROOT = Path(__file__).resolve().parents[2]
WRAPPER = Path(__file__).resolve().with_name("_gcloud_tasks_emulator_loopback.py")

# Written last, when the virtualenv is complete; its content says what was installed.
_STAMP_NAME = ".celery-gcp-interop-ready"
_STAMP = f"{REQUIREMENT}\n"
# Must import in the emulator's venv for it to count as usable.
_PROBE = "import grpc, gcloud_tasks_emulator.server"
_GITIGNORE_MARK = "# gcloud-tasks-emulator virtualenv for tests/interop (safe to delete)"
_VENV_BUILD_TIMEOUT = 900.0
_POLL_INTERVAL = 0.05


def interop_venv_path() -> Path:
    """Where the emulator's virtualenv lives: ``$CELERY_GCP_INTEROP_VENV`` or ``.venv-interop``."""
    configured = os.environ.get(VENV_ENV_VAR)
    return Path(configured).resolve() if configured else REPO_ROOT / ".venv-interop"


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _probe(venv: Path) -> tuple[bool, str]:
    """Whether the venv's interpreter runs and imports the emulator; and what it printed."""
    python = _venv_python(venv)
    if not os.access(python, os.X_OK):
        return False, f"{python} is missing"
    # The base interpreter may have gone away (e.g. a pyenv upgrade): check that it runs.
    probe = subprocess.run(
        [str(python), "-I", "-c", _PROBE],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return probe.returncode == 0, probe.stdout + probe.stderr


def _venv_is_ready(venv: Path) -> bool:
    try:
        if (venv / _STAMP_NAME).read_text(encoding="utf-8") != _STAMP:
            return False
    except OSError:
        return False
    return _probe(venv)[0]


@contextlib.contextmanager
def _locked_dir(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the directory itself (no stray lock file in the repo).

    The directory is never removed while building, only emptied, so every process locks
    the same inode.
    """
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _empty_dir(path: Path) -> None:
    """Empty a half-built or stale virtualenv, refusing anything that is not one."""
    entries = list(path.iterdir())
    gitignore = path / ".gitignore"
    ours = gitignore.is_file() and _GITIGNORE_MARK in gitignore.read_text(errors="replace")
    if entries and not ours and not (path / "pyvenv.cfg").is_file():
        raise RuntimeError(
            f"refusing to empty {path}: it is not a virtualenv (check ${VENV_ENV_VAR})"
        )
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _run_build_step(cmd: Sequence[str], log: list[str]) -> None:
    result = subprocess.run(
        list(cmd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=_VENV_BUILD_TIMEOUT,
        check=False,
    )
    log.append(f"$ {' '.join(cmd)}\n{result.stdout}")
    if result.returncode != 0:
        raise RuntimeError(
            f"building the gcloud-tasks-emulator virtualenv failed "
            f"(exit {result.returncode}):\n" + "\n".join(log)[-6000:]
        )


def ensure_venv(venv: Path | None = None) -> Path:
    """Make sure the emulator's virtualenv exists; return its python.

    Idempotent: a complete virtualenv (stamp present, interpreter runs, package imports) is
    reused as it is. Otherwise it is rebuilt from empty, under an exclusive lock on the
    virtualenv directory, so a second process waits for the first and then reuses its work.
    """
    venv = (venv or interop_venv_path()).absolute()
    if _venv_is_ready(venv):
        return _venv_python(venv)
    with _locked_dir(venv):
        if _venv_is_ready(venv):  # another process built it while we waited for the lock
            return _venv_python(venv)
        _empty_dir(venv)
        # Keep git (and so ruff, which honours .gitignore) away from the virtualenv.
        (venv / ".gitignore").write_text(f"{_GITIGNORE_MARK}\n*\n", encoding="utf-8")
        log: list[str] = []
        # sys.executable is the python3 running the tests: same version as the suite's.
        _run_build_step([sys.executable, "-m", "venv", str(venv)], log)
        _run_build_step(
            [str(_venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check",
             "--no-input", REQUIREMENT],
            log,
        )
        ok, output = _probe(venv)
        if not ok:
            raise RuntimeError(
                f"gcloud-tasks-emulator was installed in {venv} but does not import:\n"
                + "\n".join([*log, output])[-6000:]
            )
        stamp = venv / _STAMP_NAME
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(_STAMP, encoding="utf-8")
        tmp.replace(stamp)
    return _venv_python(venv)


def unique_queue_id(prefix: str = "interop") -> str:
    """A queue id never used before: the emulator cannot reuse a deleted queue's name."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


class PortReservation:
    """Hold a loopback port so that nothing else is given it, while letting us serve on it.

    The socket is bound with ``SO_REUSEADDR`` and never listens: the kernel will not hand the
    port out as an ephemeral one, but a server that also sets ``SO_REUSEADDR`` (as
    ``http.server`` and uvicorn do) can still bind and listen on it. Used for the emulator's
    App Engine target, which must be fixed when the emulator starts.
    """

    def __init__(self, host: str = LOOPBACK) -> None:
        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        self.port: int = self._socket.getsockname()[1]

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> PortReservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GcloudTasksEmulator:
    """One ``gcloud-tasks-emulator`` process, listening on ``127.0.0.1`` only.

    ``target_host``/``target_port`` are where App Engine tasks are sent; HTTP tasks go to
    their own URL. ``extra_args`` are passed to ``gcloud-tasks-emulator start`` (e.g.
    ``["--default-queue", "projects/p/locations/l/queues/default"]``).
    """

    host = LOOPBACK

    def __init__(
        self,
        *,
        python: Path | None = None,
        target_host: str = LOOPBACK,
        target_port: int = 80,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.python = python
        self.target_host = target_host
        self.target_port = target_port
        self.extra_args = list(extra_args)
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._log_text = ""

    # -- what tests use -------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not running")
        return self._port

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"``, for ``grpc.insecure_channel``."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the emulator is not running")
        return self._process.pid

    def log_text(self) -> str:
        """The emulator's output so far (its log), for failure messages."""
        if self._workdir is not None:
            with contextlib.suppress(OSError):
                return (self._workdir / "emulator.log").read_text(errors="replace")
        return self._log_text

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> GcloudTasksEmulator:
        """Start the emulator and wait until its gRPC port accepts connections."""
        if self._process is not None:
            raise RuntimeError("the emulator is already running")
        python = self.python or ensure_venv()
        self._workdir = Path(tempfile.mkdtemp(prefix="gcloud-tasks-emulator-"))
        port_file = self._workdir / "port"
        cmd = [
            str(python), "-I", str(WRAPPER),
            "--bind-host", self.host,
            "--port-file", str(port_file),
            "start",
            "--port", "0",
            "--target-host", self.target_host,
            "--target-port", str(self.target_port),
            *self.extra_args,
        ]
        with open(self._workdir / "emulator.log", "wb") as log:
            self._process = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,  # closing it stops the emulator; so does our death
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._workdir,
            )
        try:
            self._port = self._wait_until_listening(port_file, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_listening(self, port_file: Path, timeout: float) -> int:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        port: int | None = None
        while True:
            if port is None:
                with contextlib.suppress(FileNotFoundError, ValueError):
                    port = int(port_file.read_text())
            if port is not None:
                with contextlib.suppress(OSError), socket.create_connection(
                    (self.host, port), timeout=1.0
                ):
                    return port
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"gcloud-tasks-emulator did not accept connections on "
                    f"{self.host}:{port} within {timeout} s; its log:\n{self.log_text()}"
                )
            try:  # the poll interval, which also notices the process dying
                code = self._process.wait(timeout=min(_POLL_INTERVAL, remaining))
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(
                f"gcloud-tasks-emulator exited with {code} before listening; its log:\n"
                f"{self.log_text()}"
            )

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop gracefully (close its stdin), escalating to SIGTERM then SIGKILL.

        Returns the exit code (``None`` if it was not running).
        """
        process, self._process = self._process, None
        self._port = None
        code: int | None = None
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    code = process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    code = process.wait()
        if self._workdir is not None:
            self._log_text = self.log_text()
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        return code

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to exit by itself; its exit code."""
        if self._process is None:
            raise RuntimeError("the emulator is not running")
        return self._process.wait(timeout)

    def __enter__(self) -> GcloudTasksEmulator:
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.address if self._port is not None else "stopped"
        return (f"<GcloudTasksEmulator {where} App Engine target "
                f"{self.target_host}:{self.target_port}>")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gcloud-tasks-emulator for interop tests")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("ensure-venv", help="create the emulator's virtualenv if needed")
    run = commands.add_parser("run", help="run the emulator on loopback until Ctrl-C")
    run.add_argument("--target-host", default=LOOPBACK)
    run.add_argument("--target-port", type=int, default=8080)
    args = parser.parse_args(argv)

    started = time.monotonic()
    python = ensure_venv()
    print(f"{REQUIREMENT} ready in {interop_venv_path()} ({time.monotonic() - started:.1f} s): "
          f"{python}", flush=True)
    if args.command == "run":
        with GcloudTasksEmulator(python=python, target_host=args.target_host,
                                 target_port=args.target_port) as emulator:
            print(f"listening on {emulator.address}; Ctrl-C stops it", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                emulator.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
