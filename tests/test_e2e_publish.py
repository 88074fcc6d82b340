"""Publishing a site with ``curl -T`` against the real ``medusa serve -c medusa.toml``: the
authors' password file made with ``medusa passwd``, public reads (curl, wget), 401 without
credentials, 201/204 on upload, DELETE, a large upload with ``Expect: 100-continue``, a
write that runs out of space (the previous version survives, no temporary file is left, the
failure is logged), bad handler options refused at start, the temporary file of an upload
killed midway (hidden, then removed at the next start) and dot segments above the root sent
by ``curl --path-as-is`` (403)."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
from pathlib import Path

import pytest
from tests.conftest import Medusa, Runner, curl, medusa_command

from medusa.core.testing import require_tool, wait_until

PASSWORD = "correct horse"  # noqa: S105 (a test author's password)


def _site(tmp_path: Path, runner: Runner) -> tuple[Path, Path]:
    """A site directory, and a medusa.toml publishing it with one author."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_bytes(b"<h1>welcome</h1>\n")
    done = subprocess.run(
        [*medusa_command(), "passwd", str(tmp_path / "authors"), "author", "--stdin"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    config = tmp_path / "medusa.toml"
    config.write_text(
        "[[server]]\n"
        'type = "http"\n'
        'listen = "127.0.0.1:0"\n'
        "[[server.handler]]\n"
        'type = "publish"\n'
        'root = "www"\n'
        'passwords = "authors"\n'
        'realm = "Our site"\n'
        "max_size = 8_000_000\n"
    )
    return root, config


def test_publish_with_curl(runner: Runner, tmp_path: Path) -> None:
    root, config = _site(tmp_path, runner)
    server = runner.start("serve", "-c", str(config))
    base = server.endpoint.where
    page = tmp_path / "news.html"
    page.write_bytes(b"<p>news</p>\n")

    refused = curl("-T", str(page), base + "news.html")
    assert refused.status == 401
    assert 'realm="Our site"' in (refused.header("WWW-Authenticate") or "")
    assert not (root / "news.html").exists()
    assert curl("-T", str(page), "-u", "author:wrong", base + "news.html").status == 401

    created = curl("-T", str(page), "-u", f"author:{PASSWORD}", base + "news.html")
    assert created.status == 201
    assert created.header("Location") == "/news.html"
    assert curl(base + "news.html").body == b"<p>news</p>\n"  # reads are public

    page.write_bytes(b"<p>more news</p>\n")
    assert curl("-T", str(page), "-u", f"author:{PASSWORD}", base + "news.html").status == 204
    assert (root / "news.html").read_bytes() == b"<p>more news</p>\n"

    assert curl("-X", "DELETE", base + "news.html").status == 401
    assert curl("-X", "DELETE", "-u", f"author:{PASSWORD}", base + "news.html").status == 204
    assert curl(base + "news.html").status == 404
    assert server.stop() == 0


def test_large_upload_with_continue_and_wget_reads(runner: Runner, tmp_path: Path) -> None:
    root, config = _site(tmp_path, runner)
    server = runner.start("serve", "-c", str(config))
    base = server.endpoint.where
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5 << 20))
    result = curl(
        "-T", str(big), "-u", f"author:{PASSWORD}", "-H", "Expect: 100-continue", base + "big.bin"
    )
    assert result.status == 201
    assert (root / "big.bin").read_bytes() == big.read_bytes()
    wget = require_tool("wget", "apt-get install wget")
    fetched = tmp_path / "fetched.bin"
    subprocess.run(
        [wget, "-q", "--no-proxy", "-O", str(fetched), base + "big.bin"], check=True, timeout=60
    )
    assert fetched.read_bytes() == big.read_bytes()
    # Over max_size: refused from the head, nothing stored.
    huge = tmp_path / "huge.bin"
    huge.write_bytes(b"x" * 8_000_001)
    assert curl("-T", str(huge), "-u", f"author:{PASSWORD}", base + "huge.bin").status == 413
    assert not (root / "huge.bin").exists()


def test_write_failure_keeps_previous_version(runner: Runner, tmp_path: Path) -> None:
    """The server may write files of at most 1 MiB (``prlimit --fsize``; Python ignores
    SIGXFSZ, so a write past it fails with EFBIG as on a full disk): a 2 MiB upload over an
    existing page fails with 507, and the page, the directory and the log tell the story."""
    prlimit = require_tool("prlimit", "apt-get install util-linux")
    root, config = _site(tmp_path, runner)
    (root / "page.html").write_bytes(b"the previous version\n")
    process = Medusa(
        [prlimit, f"--fsize={1 << 20}", *medusa_command(), "serve", "-c", str(config)],
        cwd=tmp_path,
        log_dir=tmp_path,
        env=runner.env,
    )
    runner.processes.append(process)
    process.wait_listening()
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"y" * (2 << 20))
    base = process.endpoint.where
    result = curl("-T", str(upload), "-u", f"author:{PASSWORD}", base + "page.html")
    assert result.status == 507
    assert (root / "page.html").read_bytes() == b"the previous version\n"
    assert sorted(p.name for p in root.iterdir()) == ["index.html", "page.html"]
    assert curl(base + "page.html").body == b"the previous version\n"
    wait_until(lambda: "abandoned after" in process.stderr(), what="the log line")
    assert "/page.html" in process.stderr()


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('type = "publish"\nroot = "www"\n', "server[0].handler[0].passwords: missing"),
        ('type = "publish"\nroot = "www"\npasswords = "nobody"\n', "no such file"),
        ('type = "put"\nroot = "absent"\n', "not a directory"),
        ('type = "put"\nroot = "www"\nmode = "999"\n', "octal permission bits"),
        ('type = "put"\nroot = "www"\nmax_size = -1\n', "server[0].handler[0].max_size"),
    ],
)
def test_bad_options_refused(runner: Runner, tmp_path: Path, table: str, expected: str) -> None:
    (tmp_path / "www").mkdir()
    config = tmp_path / "medusa.toml"
    config.write_text(
        f'[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\n[[server.handler]]\n{table}'
    )
    done = runner.run("serve", "-c", str(config))
    assert done.returncode == 2, done.stdout + done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


def test_upload_killed_midway_is_hidden_then_removed_at_start(
    runner: Runner, tmp_path: Path
) -> None:
    """SIGKILL during an upload leaves its temporary file; while it is there it is not
    served, and the next start removes it (one log line naming it)."""
    root, config = _site(tmp_path, runner)
    server = runner.start("serve", "-c", str(config))
    token = base64.b64encode(f"author:{PASSWORD}".encode()).decode()
    with server.endpoint.client() as client:
        client.send(
            f"PUT /big.bin HTTP/1.1\r\nHost: {client.host}\r\nAuthorization: Basic {token}\r\n"
            f"Content-Length: {1 << 20}\r\n\r\n".encode()
            + b"z" * 200_000
        )
        wait_until(
            lambda: any(p.stat().st_size > 0 for p in root.glob(".big.bin.*.upload")),
            what="the temporary file",
        )
        (temporary,) = root.glob(".big.bin.*.upload")
        assert curl(server.endpoint.where + temporary.name).status == 404
        server.send_signal(signal.SIGKILL)
        server.wait()
    assert temporary.exists()
    again = runner.start("serve", "-c", str(config))
    assert not temporary.exists()
    assert not (root / "big.bin").exists()
    wait_until(lambda: str(temporary) in again.stderr(), what="the log line")
    assert "temporary upload file" in again.stderr()


def test_dot_segments_above_the_root_refused_with_curl(runner: Runner, tmp_path: Path) -> None:
    """``curl --path-as-is`` sends the dot segments as they are: 403, nothing stored
    anywhere (without ``--path-as-is`` curl removes them itself, RFC 3986 §5.2.4)."""
    root, config = _site(tmp_path, runner)
    server = runner.start("serve", "-c", str(config))
    page = tmp_path / "page.html"
    page.write_bytes(b"<p>escape</p>\n")
    for target in ["../escape.html", "sub/../../escape.html", "%2e%2e/escape.html"]:
        result = curl(
            "--path-as-is",
            "-T",
            str(page),
            "-u",
            f"author:{PASSWORD}",
            server.endpoint.where + target,
        )
        assert result.status == 403, target
    assert sorted(p.name for p in root.iterdir()) == ["index.html"]
    assert not (tmp_path / "escape.html").exists()
