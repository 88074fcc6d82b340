"""Fixtures of the end-to-end tests: the real ``medusa`` command as a subprocess, served
trees, and small blocking clients (raw sockets, curl).

Every process a test starts is registered with a :class:`Runner` whose fixture stops it
(SIGTERM, then SIGKILL after a bounded wait) in a ``finally``, also when the test fails.
Waits are on conditions (a line on stdout, a connection refused, EOF on a socket), each
with a deadline that fails the test with a clear message; nothing sleeps to synchronise.

The test modules import the helpers and types of this module as ``tests.conftest`` (the
name pytest's importlib mode gives this file, so no second copy is imported), and get the
servers from the fixtures.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from medusa.core.testing import require_tool

REPO = Path(__file__).resolve().parent.parent
"""The monorepo's root."""

EXAMPLE_SCRIPT = REPO / "examples" / "start_medusa.py"

START_TIMEOUT = 30.0
"""Seconds a ``medusa`` process gets to print its listening lines."""

IO_TIMEOUT = 15.0
"""Seconds a client waits for a response, or for the server to close."""

STOP_TIMEOUT = 30.0
"""Seconds a stopped process gets to exit before it is killed."""

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None

BACKENDS = [
    "asyncio",
    pytest.param(
        "uvloop",
        marks=pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop is not installed"),
    ),
]
"""The event loops every key test runs on (``--backend asyncio`` and ``--backend uvloop``)."""

_LISTENING = re.compile(r"^medusa: (\S+) listening on (\S+)$")


# -- waiting ---------------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], bool], message: str, timeout: float = IO_TIMEOUT, interval: float = 0.02
) -> None:
    """Poll ``predicate`` until it returns True; fail with ``message`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s: {message}")
        time.sleep(interval)


# -- endpoints and processes -----------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One address a ``medusa`` process printed as ``medusa: NAME listening on WHERE``.

    Attributes:
        name: the server type (``http``).
        where: ``http://127.0.0.1:PORT/``, ``http://[::1]:PORT/`` or ``unix:/path``.
    """

    name: str
    where: str

    @property
    def unix_path(self) -> str | None:
        """The socket path of a Unix-domain endpoint, else None."""
        return self.where[5:] if self.where.startswith("unix:") else None

    @property
    def host(self) -> str:
        """The TCP host (without brackets)."""
        match = re.match(r"^\w+://\[?([^\]/]*?)\]?:(\d+)/$", self.where)
        assert match, f"not a TCP endpoint: {self.where}"
        return match.group(1)

    @property
    def port(self) -> int:
        """The TCP port."""
        match = re.match(r"^\w+://.*:(\d+)/$", self.where)
        assert match, f"not a TCP endpoint: {self.where}"
        return int(match.group(1))

    @property
    def url(self) -> str:
        """The base URL without the trailing slash (``http://127.0.0.1:PORT``); for a Unix
        socket ``http://localhost`` (to use with ``curl --unix-socket``)."""
        if self.unix_path is not None:
            return "http://localhost"
        return self.where.rstrip("/")

    @property
    def host_header(self) -> str:
        """The ``Host`` value a client sends to this endpoint."""
        if self.unix_path is not None:
            return "localhost"
        host = self.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def connect(self, timeout: float = IO_TIMEOUT, rcvbuf: int | None = None) -> socket.socket:
        """Open a blocking socket to the endpoint (``rcvbuf``: SO_RCVBUF set before the
        connection, which turns off the kernel's receive-buffer growth)."""
        path = self.unix_path
        if path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: str | tuple[str, int] = path
        else:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            address = (self.host, self.port)
        try:
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        return sock

    def client(self, timeout: float = IO_TIMEOUT, rcvbuf: int | None = None) -> RawClient:
        """Return a :class:`RawClient` on a new connection."""
        return RawClient(self.connect(timeout, rcvbuf), self.host_header)


class Medusa:
    """A running ``medusa`` process.

    Its standard output is read by a thread (lines kept in :attr:`lines`); its standard
    error goes to a file, shown in failure messages.
    """

    def __init__(
        self, argv: Sequence[str], *, cwd: Path, log_dir: Path, env: Mapping[str, str]
    ) -> None:
        self.argv = list(argv)
        self.stderr_path = log_dir / f"medusa-{time.monotonic_ns()}.stderr"
        self._stderr: IO[bytes] = open(self.stderr_path, "wb")  # noqa: SIM115
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
            )
        except BaseException:
            self._stderr.close()
            raise
        self._reader = threading.Thread(target=self._read, name="medusa-stdout", daemon=True)
        self._reader.start()
        self.endpoints: list[Endpoint] = []

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        for raw in stdout:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def stderr(self) -> str:
        """What the process wrote on standard error so far."""
        self._stderr.flush()
        return self.stderr_path.read_text("utf-8", "replace")

    def stdout(self) -> str:
        """What the process wrote on standard output so far."""
        with self._cond:
            return "\n".join(self.lines)

    def describe(self) -> str:
        """The command, its status and its output, for failure messages."""
        return (
            f"command: {' '.join(self.argv)}\nexit status: {self.proc.poll()}\n"
            f"--- stdout ---\n{self.stdout()}\n--- stderr ---\n{self.stderr()[-6000:]}"
        )

    def wait_listening(self, count: int = 1, timeout: float = START_TIMEOUT) -> list[Endpoint]:
        """Wait until the process printed ``count`` listening lines; return them all.

        Fails the test (with the process's output) when the process exits first or the
        lines do not come within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in map(_LISTENING.match, self.lines) if m]
                if len(found) >= count:
                    self.endpoints = [Endpoint(m.group(1), m.group(2)) for m in found]
                    return self.endpoints
                if self._eof:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.5))
        # The process may have exited: collect its status before describing it.
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(2)
        pytest.fail(f"medusa did not print {count} listening line(s)\n{self.describe()}")

    @property
    def endpoint(self) -> Endpoint:
        """The first listening endpoint."""
        assert self.endpoints, "wait_listening() first"
        return self.endpoints[0]

    def running(self) -> bool:
        """True while the process has not exited."""
        return self.proc.poll() is None

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the process (when it still runs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait for the process to exit and return its status; fail after ``timeout`` s."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"medusa did not exit within {timeout:.0f} s\n{self.describe()}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send ``signum`` and wait for the exit status."""
        self.send_signal(signum)
        return self.wait(timeout)

    def cleanup(self) -> None:
        """Make sure the process is gone (SIGTERM, then SIGKILL) and release its pipes."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(STOP_TIMEOUT)
        finally:
            self._reader.join(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self._stderr.close()


def medusa_command() -> list[str]:
    """The ``medusa`` console script of the running environment (next to
    ``sys.executable``), else ``python -m medusa.core.cli``."""
    script = Path(sys.executable).with_name("medusa")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "medusa.core.cli"]


class Runner:
    """Starts ``medusa`` processes and stops every one of them in :meth:`cleanup`.

    Args:
        log_dir: where the processes' stderr files go.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[Medusa] = []
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def start(
        self,
        *args: str,
        cwd: Path | None = None,
        listening: int = 1,
        env: Mapping[str, str] | None = None,
    ) -> Medusa:
        """Run ``medusa ARGS...`` and wait for ``listening`` listening lines (0: do not
        wait)."""
        process = Medusa(
            [*medusa_command(), *args],
            cwd=cwd or REPO,
            log_dir=self.log_dir,
            env={**self.env, **(env or {})},
        )
        self.processes.append(process)
        if listening:
            process.wait_listening(listening)
        return process

    def run(
        self, *args: str, cwd: Path | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``medusa ARGS...`` to completion (killed after ``timeout`` s) and return the
        result with text output."""
        return subprocess.run(
            [*medusa_command(), *args],
            cwd=cwd or REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def cleanup(self) -> None:
        """Stop every process started here (also when a test failed)."""
        errors: list[BaseException] = []
        for process in self.processes:
            try:
                process.cleanup()
            except BaseException as exc:  # keep stopping the others
                errors.append(exc)
        self.processes.clear()
        if errors:
            raise errors[0]


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    """A :class:`Runner` whose processes are stopped after the test."""
    run = Runner(tmp_path)
    try:
        yield run
    finally:
        run.cleanup()


@pytest.fixture(scope="module")
def module_runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    """A :class:`Runner` whose processes are stopped after the test module."""
    run = Runner(tmp_path_factory.mktemp("medusa-logs"))
    try:
        yield run
    finally:
        run.cleanup()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The event loop under test: ``asyncio`` or ``uvloop``."""
    value = request.param
    assert isinstance(value, str)
    return value


# -- served trees ----------------------------------------------------------------------------


def _bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _page(title: str, links: Sequence[str]) -> bytes:
    items = "".join(f'<li><a href="{link}">{link}</a></li>\n' for link in links)
    return (
        f"<!DOCTYPE html>\n<html><head><title>{title}</title>"
        f'<link rel="stylesheet" href="/style.css"></head>\n'
        f"<body><h1>{title}</h1><ul>\n{items}</ul></body></html>\n"
    ).encode()


def site_files() -> dict[str, bytes]:
    """The served test tree: relative path -> content. Every directory has an
    ``index.html`` linking its files and subdirectories (so ``wget --mirror`` can reach
    everything), with text, empty, binary, and larger-than-one-write files."""
    files: dict[str, bytes] = {
        "hello.txt": b"Hello, Medusa!\n",
        "empty.txt": b"",
        "style.css": b"body { font-family: sans-serif; }\n",
        "data.bin": _bytes(1, 10_000),
        "big.bin": _bytes(2, 3 * 1024 * 1024 + 17),
        "medium.bin": _bytes(3, 65_537),
        "with space.txt": b"a file name with a space\n",
        "docs/guide.txt": b"The guide.\n" * 200,
        "docs/logo.png": b"\x89PNG\r\n\x1a\n" + _bytes(4, 4_000),
        "docs/deep/data.json": b'{"answer": 42}\n',
        "docs/deep/blob.bin": _bytes(5, 200_001),
        "assets/archive.tar.gz": _bytes(6, 70_000),
        "assets/zero.bin": bytes(100_000),
    }
    files["index.html"] = _page(
        "Medusa test site",
        [
            "hello.txt",
            "empty.txt",
            "data.bin",
            "big.bin",
            "medium.bin",
            "with%20space.txt",
            "docs/",
            "assets/",
        ],
    )
    files["docs/index.html"] = _page("Docs", ["guide.txt", "logo.png", "deep/", "../hello.txt"])
    files["docs/deep/index.html"] = _page("Deep", ["data.json", "blob.bin", "../../index.html"])
    files["assets/index.html"] = _page("Assets", ["archive.tar.gz", "zero.bin"])
    return files


def write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    """Write ``files`` (relative path -> content) under ``root``."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def read_tree(root: Path) -> dict[str, bytes]:
    """Return every regular file under ``root`` as relative path -> content."""
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A served tree (see :func:`site_files`), shared by a module's tests."""
    root = tmp_path_factory.mktemp("site")
    write_tree(root, site_files())
    return root


@pytest.fixture(scope="module")
def file_server(backend: str, site: Path, module_runner: Runner) -> Medusa:
    """``medusa serve SITE --http 127.0.0.1:0 --backend BACKEND``, for the module."""
    server = module_runner.start(
        "serve", str(site), "--http", "127.0.0.1:0", "--backend", backend, "--grace", "5"
    )
    return server


def free_port_range(count: int = 1, hosts: Sequence[str] = ("127.0.0.1",)) -> int:
    """The first of ``count`` consecutive TCP ports free now on every one of ``hosts``
    (a port for HAProxy, a passive range, a monitor's PORT+N), chosen below the kernel's
    range of ephemeral ports (``ip_local_port_range``): a port the kernel picks for port 0
    could be taken by an outgoing connection (a client's, a health check's) before the
    server binds it. Fails the test when none is found."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    for _ in range(1000):
        low = random.randrange(20000, max(20001, ephemeral - count))
        try:
            for port in range(low, low + count):
                for host in hosts:
                    with socket.socket() as probe:
                        probe.bind((host, port))
        except OSError:
            continue
        return low
    pytest.fail(f"no {count} free consecutive ports on {', '.join(hosts)}")


def free_port(host: str = "127.0.0.1") -> int | None:
    """Return a port that can be bound on ``host`` now, or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, 0))
        except OSError:
            return None
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when ``host:port`` can be bound now (with SO_REUSEADDR, as the server does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def refuses_connections(endpoint: Endpoint) -> bool:
    """True when a connection attempt to ``endpoint`` is refused."""
    try:
        sock = endpoint.connect(timeout=2)
    except (ConnectionRefusedError, FileNotFoundError):
        return True
    except OSError as exc:
        return exc.errno in (errno.ECONNREFUSED, errno.ENOENT)
    sock.close()
    return False


# -- HTTP over raw sockets -------------------------------------------------------------------


@dataclass
class RawResponse:
    """One HTTP response as read from the wire.

    Attributes:
        version: ``HTTP/1.1``.
        status: the status code.
        reason: the reason phrase.
        headers: the fields in order, names as sent.
        body: the body, de-chunked.
        chunked: whether it came with ``Transfer-Encoding: chunked``.
    """

    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    chunked: bool = False

    def header(self, name: str) -> str | None:
        """The value of the first field called ``name`` (case-insensitive), or None."""
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None

    @property
    def closes(self) -> bool:
        """True when the response announces ``Connection: close``."""
        return "close" in (self.header("connection") or "").lower()


def parse_head(head: bytes) -> RawResponse:
    """Parse a status line and header block (without the final blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    match = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
    assert match, f"not an HTTP status line: {lines[0]!r}"
    response = RawResponse(match.group(1), int(match.group(2)), match.group(3) or "")
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        assert sep, f"malformed header line {line!r}"
        response.headers.append((name, value.strip()))
    return response


class RawClient:
    """A blocking HTTP/1.x client on a socket, for requests exactly as written.

    Args:
        sock: a connected socket (closed by :meth:`close`).
        host: the ``Host`` value that :meth:`get` sends.
    """

    def __init__(self, sock: socket.socket, host: str = "localhost") -> None:
        self.sock = sock
        self.host = host
        self.buffer = bytearray()
        self.eof = False

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def send(self, data: bytes) -> None:
        """Send all of ``data``."""
        self.sock.sendall(data)

    def get(self, path: str, *, method: str = "GET", extra: str = "") -> None:
        """Send a simple HTTP/1.1 request (``extra``: further header lines, each ending
        in CRLF)."""
        self.send(f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{extra}\r\n".encode())

    def _fill(self, deadline: float, what: str) -> bool:
        """Read more bytes into the buffer; False at EOF (or reset)."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"timed out waiting for {what}")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(262144)
        except TimeoutError:
            pytest.fail(f"timed out waiting for {what}; got so far {bytes(self.buffer[:300])!r}")
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def _take_until(self, marker: bytes, deadline: float, what: str) -> bytes:
        while True:
            index = self.buffer.find(marker)
            if index >= 0:
                out = bytes(self.buffer[:index])
                del self.buffer[: index + len(marker)]
                return out
            if not self._fill(deadline, what):
                pytest.fail(
                    f"connection closed while waiting for {what}; got {bytes(self.buffer[:300])!r}"
                )

    def _take(self, count: int, deadline: float, what: str) -> bytes:
        while len(self.buffer) < count:
            if not self._fill(deadline, what):
                pytest.fail(
                    f"connection closed after {len(self.buffer)} of {count} bytes of {what}"
                )
        out = bytes(self.buffer[:count])
        del self.buffer[:count]
        return out

    def read_response(self, *, head: bool = False, timeout: float = IO_TIMEOUT) -> RawResponse:
        """Read one complete response (``head``: it answers a HEAD request, so it has no
        body whatever its headers say)."""
        deadline = time.monotonic() + timeout
        response = parse_head(self._take_until(b"\r\n\r\n", deadline, "a response head"))
        if head or response.status in (204, 304) or response.status < 200:
            return response
        encoding = (response.header("transfer-encoding") or "").lower()
        length = response.header("content-length")
        if "chunked" in encoding:
            response.chunked = True
            parts: list[bytes] = []
            while True:
                size_line = self._take_until(b"\r\n", deadline, "a chunk size")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    while self._take_until(b"\r\n", deadline, "the trailer"):
                        pass
                    break
                parts.append(self._take(size, deadline, "a chunk"))
                assert self._take(2, deadline, "a chunk's CRLF") == b"\r\n"
            response.body = b"".join(parts)
        elif length is not None:
            response.body = self._take(int(length), deadline, "the body")
        else:
            while self._fill(deadline, "the end of a close-delimited body"):
                pass
            response.body = bytes(self.buffer)
            self.buffer.clear()
        return response

    def wait_closed(self, timeout: float = IO_TIMEOUT) -> bytes:
        """Wait until the server closes the connection; return the bytes that came
        before (fails the test after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline, "the server to close the connection"):
            pass
        out = bytes(self.buffer)
        self.buffer.clear()
        return out

    def closed_or_data(self, timeout: float) -> bool:
        """True when data or EOF comes within ``timeout`` seconds (data is kept for the
        next read); False when nothing happens that long."""
        if self.eof or self.buffer:
            return True
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(262144)
        except TimeoutError:
            return False
        except ConnectionResetError:
            data = b""
        if data:
            self.buffer += data
        else:
            self.eof = True
        return True

    def closed_now(self, timeout: float = 0.5) -> bool:
        """True when the connection is closed (EOF or reset) within ``timeout`` with no
        unread data; False when it stays open that long. Data pending is an error."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1)
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        assert not data, f"unexpected data on the connection: {data!r}"
        return True


def request_bytes(
    method: str,
    target: str,
    host: str,
    *,
    version: str = "HTTP/1.1",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
) -> bytes:
    """Build one request as bytes (``Content-Length`` added for a body unless given)."""
    lines = [f"{method} {target} {version}", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    names = {name.lower() for name, _ in headers}
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- curl ------------------------------------------------------------------------------------


@dataclass
class CurlResult:
    """What ``curl -i`` showed: the last response's status, headers and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    stderr: str

    def header(self, name: str) -> str | None:
        """The value of the first field called ``name`` (case-insensitive), or None."""
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None


CURL = shutil.which("curl")
WGET = shutil.which("wget")


def curl(*args: str, timeout: float = 60.0) -> CurlResult:
    """Run ``curl -sS -i ARGS...`` and parse the response it printed (the last one when
    curl followed redirects)."""
    program = require_tool("curl", "apt-get install curl")
    done = subprocess.run(
        [program, "-sS", "-i", "--max-time", str(int(timeout)), "--noproxy", "*", *args],
        capture_output=True,
        timeout=timeout + 10,
        check=False,
    )
    assert done.returncode == 0, (
        f"curl {' '.join(args)} failed ({done.returncode}): {done.stderr.decode()}"
    )
    data = done.stdout
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"curl printed no complete response: {data[:300]!r}"
        parsed = parse_head(head)
        following = rest.startswith(b"HTTP/") and (
            parsed.status < 200 or parsed.status in (301, 302, 303, 307, 308)
        )
        if not following:
            return CurlResult(parsed.status, parsed.headers, rest, done.stderr.decode())
        data = rest


@pytest.fixture(scope="module")
def example_server(backend: str, site: Path, module_runner: Runner) -> Medusa:
    """``medusa run examples/start_medusa.py --port 0 --backend BACKEND SITE``: the example
    startup script (status and echo handlers before the files of SITE), for the module."""
    return module_runner.start(
        "run", str(EXAMPLE_SCRIPT), "--port", "0", "--backend", backend, "--grace", "5", str(site)
    )
