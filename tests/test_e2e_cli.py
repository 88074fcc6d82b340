"""The ``medusa`` command itself: ``serve`` with addresses and ``-c medusa.toml``, bad
configurations, ``run`` with the example startup script, ``plugins``, the event-loop
backend, IPv6 and Unix-domain sockets."""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import (
    BACKENDS,
    EXAMPLE_SCRIPT,
    HAVE_UVLOOP,
    Medusa,
    Runner,
    curl,
    free_port,
    port_is_free,
    refuses_connections,
    write_tree,
)

from medusa.core.plugins import load_server_types

pytestmark = pytest.mark.e2e


def _two_roots(tmp_path: Path) -> tuple[Path, Path]:
    one, two = tmp_path / "one", tmp_path / "two"
    write_tree(one, {"which.txt": b"root one\n", "only-one.txt": b"1\n"})
    write_tree(two, {"which.txt": b"root two\n", "sub/only-two.txt": b"2\n"})
    return one, two


# -- medusa serve ----------------------------------------------------------------------------


def test_toml_two_servers_one_process(runner: Runner, tmp_path: Path) -> None:
    _two_roots(tmp_path)
    config = tmp_path / "medusa.toml"
    config.write_text(
        """
[medusa]
backend = "asyncio"
grace = 2

[[server]]
type = "http"
listen = "127.0.0.1:0"
root = "one"

[[server]]
type = "http"
listen = "127.0.0.1:0"
root = "two"          # relative to the file's directory
"""
    )
    process = runner.start("serve", "-c", str(config), listening=2, cwd=Path("/"))
    one, two = process.endpoints
    assert one.port != two.port
    assert curl(one.url + "/which.txt").body == b"root one\n"
    assert curl(two.url + "/which.txt").body == b"root two\n"
    assert curl(one.url + "/only-one.txt").status == 200
    assert curl(two.url + "/only-one.txt").status == 404
    assert curl(two.url + "/sub/only-two.txt").body == b"2\n"
    assert curl(one.url + "/sub/only-two.txt").status == 404
    assert process.stop() == 0
    assert refuses_connections(one)
    assert refuses_connections(two)


def test_repeated_http_option(runner: Runner, tmp_path: Path) -> None:
    one, _ = _two_roots(tmp_path)
    process = runner.start(
        "serve", str(one), "--http", "127.0.0.1:0", "--http", "127.0.0.1:0", listening=2
    )
    for endpoint in process.endpoints:
        assert curl(endpoint.url + "/which.txt").body == b"root one\n"


BAD_CONFIGS = [
    pytest.param(
        '[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\nroot = "."\nbogus = 1\n',
        ["server[0].bogus", "unknown option"],
        id="unknown-server-key",
    ),
    pytest.param(
        '[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\nroot = "."\nmax_body_size = "big"\n',
        ["server[0].max_body_size", "expected an integer", "'big'"],
        id="wrong-type",
    ),
    pytest.param(
        '[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\nroot = "."\nheader_timeout = -1\n',
        ["server[0].header_timeout", "greater than 0"],
        id="bad-value",
    ),
    pytest.param(
        '[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\nroot = "."\naccess_log = "yes"\n',
        ["server[0].access_log", "no logger 'yes'"],
        id="unknown-logger",
    ),
    pytest.param(
        '[medusa]\ncolour = "red"\n[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\n',
        ["medusa.colour", "unknown option"],
        id="unknown-medusa-key",
    ),
    pytest.param(
        '[medusa]\nbackend = "tokio"\n[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\n',
        ["medusa.backend", "auto, uvloop or asyncio"],
        id="bad-backend",
    ),
    pytest.param(
        '[medusa]\ngrace = "long"\n[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\n',
        ["medusa.grace", "expected"],
        id="grace-type",
    ),
    pytest.param(
        '[[server]]\ntype = "gopher"\nlisten = "127.0.0.1:0"\n',
        ["server[0].type", "gopher", "http"],
        id="unknown-type",
    ),
    pytest.param(
        '[[server]]\nlisten = "127.0.0.1:0"\n',
        ["server[0].type", "missing"],
        id="missing-type",
    ),
    pytest.param(
        '[[server]]\ntype = "http"\nlisten = "nowhere"\n',
        ["server[0].listen", "nowhere"],
        id="bad-listen",
    ),
    pytest.param(
        '[[server]]\ntype = "http"\nlisten = "127.0.0.1:99999"\n',
        ["server[0].listen", "65535"],
        id="bad-port",
    ),
    pytest.param(
        '[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\nroot = "no-such-dir"\n',
        ["server[0]", "no-such-dir"],
        id="missing-root",
    ),
    pytest.param(
        '[[servers]]\ntype = "http"\n',
        ["servers", "unknown table"],
        id="unknown-table",
    ),
    pytest.param("[medusa]\n", ["server", "nothing to run"], id="no-server"),
    pytest.param('[[server]\ntype = "http"\n', ["not valid TOML"], id="not-toml"),
    pytest.param(
        '[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\nroot = "."\n'
        '[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\nroot = "."\nmax_pipeline = 0\n',
        ["server[1].max_pipeline", "greater than 0"],
        id="second-server-bad",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS)
def test_bad_toml(runner: Runner, tmp_path: Path, text: str, expected: list[str]) -> None:
    config = tmp_path / "medusa.toml"
    config.write_text(text)
    done = runner.run("serve", "-c", str(config), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "listening" not in done.stdout, "a server started"
    message = done.stderr
    assert str(config) in message, message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert "Traceback" not in message


def test_bad_toml_nothing_listens(runner: Runner, tmp_path: Path) -> None:
    """The first server is fine and on a known port, the second is bad: the first must
    not have been started (everything is checked before anything listens)."""
    port = free_port()
    assert port is not None
    config = tmp_path / "medusa.toml"
    config.write_text(
        f'[[server]]\ntype = "http"\nlisten = "127.0.0.1:{port}"\nroot = "."\n'
        '[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\nroot = "."\nnope = true\n'
    )
    process = runner.start("serve", "-c", str(config), listening=0)
    assert process.wait(60) == 2
    assert "listening" not in process.stdout()
    assert "server[1].nope" in process.stderr()


def test_missing_config_file(runner: Runner, tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    done = runner.run("serve", "-c", str(missing))
    assert done.returncode == 2
    assert str(missing) in done.stderr


def test_config_and_address_conflict(runner: Runner, tmp_path: Path) -> None:
    config = tmp_path / "medusa.toml"
    config.write_text('[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\n')
    done = runner.run("serve", "-c", str(config), "--http", "127.0.0.1:0")
    assert done.returncode == 2
    assert "listening" not in done.stdout


@pytest.mark.parametrize("address", ["nowhere", "127.0.0.1:70000", "[::1]", "unix:"])
def test_bad_address(runner: Runner, tmp_path: Path, address: str) -> None:
    done = runner.run("serve", str(tmp_path), "--http", address)
    assert done.returncode == 2, done.stderr
    assert "--http" in done.stderr
    assert "listening" not in done.stdout
    assert "Traceback" not in done.stderr


def test_root_not_a_directory(runner: Runner, tmp_path: Path) -> None:
    done = runner.run("serve", str(tmp_path / "absent"), "--http", "127.0.0.1:0")
    assert done.returncode == 2
    assert done.stderr == f"medusa: ROOT {tmp_path / 'absent'}: no such directory\n"


@pytest.mark.parametrize("level", ["info", "error"])
def test_what_servers_log_while_built_has_the_configured_level(
    runner: Runner, tmp_path: Path, level: str
) -> None:
    """A put handler removes a stale temporary upload file when it is made, before the
    servers start: that warning goes through the configured logging (format and level),
    not Python's bare last-resort output."""
    (tmp_path / "www").mkdir()
    stale = tmp_path / "www" / ".page.html.abcd1234.upload"
    stale.write_bytes(b"half an upload")
    config = tmp_path / "medusa.toml"
    config.write_text(
        f'[medusa]\nlog_level = "{level}"\n\n[[server]]\ntype = "http"\n'
        'listen = "127.0.0.1:0"\n\n[[server.handler]]\ntype = "put"\nroot = "www"\n'
    )
    process = runner.start("serve", "-c", str(config))
    assert process.stop() == 0
    assert not stale.exists()
    lines = [line for line in process.stderr().splitlines() if "abcd1234" in line]
    if level == "error":
        assert lines == [], process.stderr()
    else:
        assert len(lines) == 1, process.stderr()
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ WARNING ", lines[0]), lines


@pytest.mark.parametrize("option", [["--listing"], ["--status"], ["--status", "/s"]])
def test_type_options_with_a_config_file_refused(
    runner: Runner, tmp_path: Path, option: list[str]
) -> None:
    """``--listing``/``--status`` configure the servers of ``medusa serve ROOT``: with ``-c
    FILE`` they would be ignored silently, so they are a usage error."""
    config = tmp_path / "medusa.toml"
    config.write_text('[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\n')
    done = runner.run("serve", "-c", str(config), *option)
    assert done.returncode == 2, done.stderr
    assert "-c FILE and a server type's own options" in done.stderr
    assert "listening" not in done.stdout


def test_port_in_use(runner: Runner, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = runner.run("serve", str(tmp_path), "--http", f"127.0.0.1:{port}")
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        f"medusa: http server cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another process listens there: choose another with --http ADDR or the server's "
        "listen option)\n"
    )


SERVER_TYPES = {n: k for n, k in load_server_types().items() if k.start_by_default}
"""The installed server types that ``medusa serve`` without an address option starts."""


@pytest.fixture
def port_8080() -> None:
    for kind in SERVER_TYPES.values():
        if not port_is_free(kind.default_port):
            pytest.skip(f"127.0.0.1:{kind.default_port} ({kind.name}'s default) is in use")


@pytest.mark.usefixtures("port_8080")
def test_default_address(runner: Runner, tmp_path: Path) -> None:
    """``medusa serve ROOT`` with no address: every installed type at its default port,
    HTTP on 127.0.0.1:8080."""
    one, _ = _two_roots(tmp_path)
    process = runner.start("serve", str(one), "--backend", "asyncio", listening=len(SERVER_TYPES))
    assert "medusa: http listening on http://127.0.0.1:8080/" in process.lines
    assert curl("http://127.0.0.1:8080/which.txt").body == b"root one\n"
    assert process.stop() == 0


@pytest.mark.usefixtures("port_8080")
def test_default_root_is_current_directory(runner: Runner, tmp_path: Path) -> None:
    one, _ = _two_roots(tmp_path)
    process = runner.start("serve", cwd=one, listening=len(SERVER_TYPES))
    assert "http://127.0.0.1:8080/" in [e.where for e in process.endpoints]
    assert curl("http://127.0.0.1:8080/only-one.txt").body == b"1\n"


def _ipv6_loopback() -> bool:
    return free_port("::1") is not None


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
@pytest.mark.parametrize("backend", BACKENDS)
def test_ipv6(runner: Runner, tmp_path: Path, backend: str) -> None:
    one, _ = _two_roots(tmp_path)
    (one / "dir").mkdir()
    (one / "dir" / "index.html").write_bytes(b"<p>dir</p>\n")
    process = runner.start("serve", str(one), "--http", "[::1]:0", "--backend", backend)
    endpoint = process.endpoint
    assert endpoint.where.startswith("http://[::1]:")
    url = f"http://[::1]:{endpoint.port}"
    assert curl("-g", url + "/which.txt").body == b"root one\n"
    redirect = curl("-g", url + "/dir")
    assert redirect.status == 301
    assert redirect.header("Location") == f"http://[::1]:{endpoint.port}/dir/"
    with endpoint.client() as client:
        client.get("/only-one.txt")
        assert client.read_response().body == b"1\n"
    assert process.stop() == 0


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory for Unix-domain socket paths (at most 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="medusa-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unix_socket(runner: Runner, tmp_path: Path, short_tmp: Path, backend: str) -> None:
    one, _ = _two_roots(tmp_path)
    sock_path = short_tmp / "http.sock"
    process = runner.start("serve", str(one), "--http", f"unix:{sock_path}", "--backend", backend)
    assert process.endpoint.where == f"unix:{sock_path}"
    result = curl("--unix-socket", str(sock_path), "http://localhost/which.txt")
    assert result.status == 200
    assert result.body == b"root one\n"
    head = curl("-I", "--unix-socket", str(sock_path), "http://localhost/only-one.txt")
    assert head.header("Content-Length") == "2"
    with process.endpoint.client() as client:
        for _ in range(3):
            client.get("/which.txt")
            assert client.read_response().body == b"root one\n"
    assert process.stop() == 0
    assert not sock_path.exists(), "the socket file was left behind"


def test_unix_and_tcp_together(runner: Runner, tmp_path: Path, short_tmp: Path) -> None:
    one, _ = _two_roots(tmp_path)
    sock_path = short_tmp / "s"
    process = runner.start(
        "serve", str(one), "--http", "127.0.0.1:0", "--http", f"unix:{sock_path}", listening=2
    )
    wheres = sorted(e.where for e in process.endpoints)
    assert wheres[1] == f"unix:{sock_path}"
    tcp = next(e for e in process.endpoints if e.unix_path is None)
    assert curl(tcp.url + "/which.txt").body == b"root one\n"
    assert curl("--unix-socket", str(sock_path), "http://x/which.txt").body == b"root one\n"


def _uvloop_loaded(process: Medusa) -> bool:
    maps = Path(f"/proc/{process.pid}/maps").read_text()
    return "/uvloop/" in maps


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
@pytest.mark.parametrize(
    ("args", "expect_uvloop"),
    [
        (["--backend", "asyncio"], False),
        pytest.param(
            ["--backend", "uvloop"],
            True,
            marks=pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop is not installed"),
        ),
        pytest.param(
            [],
            True,
            marks=pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop is not installed"),
        ),
    ],
    ids=["asyncio", "uvloop", "auto"],
)
def test_backend_is_used(
    runner: Runner, tmp_path: Path, args: list[str], expect_uvloop: bool
) -> None:
    """The --backend option chooses the loop the process really runs (uvloop's extension
    module is loaded into the process only when uvloop runs it)."""
    process = runner.start("serve", str(tmp_path), "--http", "127.0.0.1:0", *args)
    assert _uvloop_loaded(process) == expect_uvloop


def test_backend_from_toml(runner: Runner, tmp_path: Path) -> None:
    config = tmp_path / "medusa.toml"
    config.write_text(
        '[medusa]\nbackend = "asyncio"\n[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\n'
    )
    process = runner.start("serve", "-c", str(config))
    assert not _uvloop_loaded(process)


# -- medusa run ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_example_script(runner: Runner, tmp_path: Path, backend: str) -> None:
    one, _ = _two_roots(tmp_path)
    process = runner.start(
        "run", str(EXAMPLE_SCRIPT), "--port", "0", "--backend", backend, str(one)
    )
    url = process.endpoint.url
    assert curl(url + "/which.txt").body == b"root one\n"
    status = curl(url + "/status")
    assert status.status == 200
    text = status.body.decode()
    assert f"http server on 127.0.0.1:{process.endpoint.port}" in text
    assert "requests" in text
    assert curl("--data-binary", "ping", url + "/echo").body == b"ping"
    assert _uvloop_loaded(process) == (backend == "uvloop")
    assert process.stop() == 0


def test_run_example_script_env_and_default_root(runner: Runner) -> None:
    """The port from MEDUSA_PORT, the root by default the bundled demo site."""
    demo = EXAMPLE_SCRIPT.parent.parent / "packages" / "medusa-http" / "demo"
    if not demo.is_dir():
        pytest.skip("packages/medusa-http/demo is missing")
    process = runner.start("run", str(EXAMPLE_SCRIPT), env={"MEDUSA_PORT": "0"}, cwd=Path("/"))
    url = process.endpoint.url
    assert curl(url + "/status").status == 200
    if (demo / "index.html").exists():
        assert curl(url + "/").body == (demo / "index.html").read_bytes()


def test_run_example_script_bad_root(runner: Runner, tmp_path: Path) -> None:
    done = runner.run("run", str(EXAMPLE_SCRIPT), "--port", "0", str(tmp_path / "absent"))
    assert done.returncode == 2
    assert "absent: no such directory" in done.stderr
    assert "listening" not in done.stdout


def test_run_missing_script(runner: Runner, tmp_path: Path) -> None:
    done = runner.run("run", str(tmp_path / "absent.py"))
    assert done.returncode != 0
    assert "absent.py" in done.stderr
    assert "listening" not in done.stdout


def test_run_script_with_servers_list(runner: Runner, tmp_path: Path) -> None:
    """A script may also just define ``servers``; ``medusa run`` then runs them."""
    one, _ = _two_roots(tmp_path)
    script = tmp_path / "start.py"
    script.write_text(
        "from medusa.http import HTTPServer\n"
        f"servers = [HTTPServer(('127.0.0.1', 0), root={str(one)!r})]\n"
    )
    process = runner.start("run", str(script))
    assert curl(process.endpoint.url + "/which.txt").body == b"root one\n"
    assert process.stop() == 0


# -- medusa plugins --------------------------------------------------------------------------


def test_plugins(runner: Runner) -> None:
    done = runner.run("plugins")
    assert done.returncode == 0
    lines = [line.split() for line in done.stdout.splitlines() if line.strip()]
    names = {line[0] for line in lines}
    assert "http" in names
    http = next(line for line in lines if line[0] == "http")
    assert http[1] == "medusa-http"
    assert "medusa.http.server:HTTPServer" in done.stdout


def test_serve_help_lists_http_option(runner: Runner) -> None:
    done = runner.run("serve", "--help")
    assert done.returncode == 0
    assert "--http ADDR" in done.stdout


def test_console_script_is_used() -> None:
    """The tests run the installed console script when there is one."""
    from tests.conftest import medusa_command

    command = medusa_command()
    assert command[0].endswith("medusa") or command[1:] == ["-m", "medusa.core.cli"]
    assert os.access(command[0], os.X_OK)


def test_access_log_common_log_format(runner: Runner, tmp_path: Path) -> None:
    one, _ = _two_roots(tmp_path)
    process = runner.start("serve", str(one), "--http", "127.0.0.1:0", "--log-level", "info")
    url = process.endpoint.url
    assert curl(url + "/which.txt").status == 200
    assert curl(url + "/missing").status == 404
    assert process.stop() == 0
    log = process.stderr()
    stamp = r"\[\d\d/\w\w\w/\d\d\d\d:\d\d:\d\d:\d\d [+-]\d\d\d\d\]"

    def clf(path: str, status: int, size: str) -> str:
        return rf'127\.0\.0\.1 - - {stamp} "GET {path} HTTP/1\.1" {status} {size}'

    assert re.search(clf(r"/which\.txt", 200, "9"), log), log
    assert re.search(clf("/missing", 404, r"\d+"), log), log


def test_access_log_off_with_warning_level(runner: Runner, tmp_path: Path) -> None:
    one, _ = _two_roots(tmp_path)
    process = runner.start("serve", str(one), "--http", "127.0.0.1:0", "--log-level", "warning")
    assert curl(process.endpoint.url + "/which.txt").status == 200
    assert process.stop() == 0
    assert "GET /which.txt" not in process.stderr()


# -- medusa serve --listing / --status (issue 13, item 16) ------------------------------------


def test_serve_without_listing_names_the_options(runner: Runner, tmp_path: Path) -> None:
    write_tree(tmp_path, {"sub/a.txt": b"a\n"})
    process = runner.start("serve", str(tmp_path), "--http", "127.0.0.1:0")
    refused = curl(process.endpoint.url + "/sub/")
    assert refused.status == 403
    assert b"--listing" in refused.body
    assert b"--status" in refused.body
    assert curl(process.endpoint.url + "/status").status == 404  # off by default
    assert process.stop() == 0


def test_serve_listing_and_status(runner: Runner, tmp_path: Path) -> None:
    write_tree(tmp_path, {"sub/a.txt": b"a\n", "index.html": b"<p>home</p>\n"})
    process = runner.start("serve", str(tmp_path), "--http", "127.0.0.1:0", "--listing", "--status")
    url = process.endpoint.url
    listing = curl(url + "/sub/")
    assert listing.status == 200
    assert b'href="a.txt"' in listing.body
    assert curl(url + "/").body == b"<p>home</p>\n"  # a directory with index.html: the file
    status = curl(url + "/status?format=json")
    assert status.status == 200
    assert b'"servers"' in status.body
    assert process.stop() == 0


def test_serve_status_at_a_path(runner: Runner, tmp_path: Path) -> None:
    process = runner.start("serve", str(tmp_path), "--http", "127.0.0.1:0", "--status=/admin/st")
    url = process.endpoint.url
    assert curl(url + "/admin/st").status == 200
    assert curl(url + "/status").status == 404
    assert process.stop() == 0


def test_serve_status_path_must_be_a_url_path(runner: Runner, tmp_path: Path) -> None:
    """``--status DIR`` would take ROOT for the page's path: refused with a hint."""
    done = runner.run("serve", "--status", str(tmp_path.name), "--http", "127.0.0.1:0")
    assert done.returncode == 2
    assert "put ROOT before --status" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_help_lists_listing_and_status(runner: Runner) -> None:
    done = runner.run("serve", "--help")
    assert "--listing" in done.stdout
    assert "--status [PATH]" in done.stdout
