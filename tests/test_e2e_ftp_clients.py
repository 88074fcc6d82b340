"""The FTP server in the real ``medusa`` command, driven by real clients: curl (ftp://,
uploads), lftp (mirror of a tree in both directions, byte for byte), HTTP and FTP serving
the same tree from one process, and an upload cut short by a SIGKILL of the server."""

from __future__ import annotations

import ftplib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.conftest import (
    BACKENDS,
    Endpoint,
    Medusa,
    Runner,
    curl,
    read_tree,
    wait_until,
    write_tree,
)

from medusa.core.passwords import hash_password

pytestmark = pytest.mark.e2e

CURL = shutil.which("curl")
LFTP = shutil.which("lftp")

TREE = {
    "readme.txt": b"hello over ftp\n",
    "data/big.bin": os.urandom(2 * 1024 * 1024 + 3),
    "data/empty": b"",
    "data/nested/deep.txt": b"deep\n" * 1000,
    "with space/name with spaces.txt": b"spaces\n",
    "utf8/caf\u00e9.txt": "caf\u00e9\n".encode(),
}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def ftp_endpoint(endpoints: list[Endpoint]) -> Endpoint:
    return next(e for e in endpoints if e.name == "ftp")


def run(argv: list[str], server: Medusa, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Run a client to completion; on failure show its stderr and the server's output."""
    done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    assert done.returncode == 0, (
        f"{argv[0]} failed ({done.returncode}): {done.stderr.decode(errors='replace')}\n"
        f"{server.describe()}"
    )
    return done


def stop(server: Medusa) -> None:
    """Stop the server with SIGTERM; it must exit with status 0 (else show its output)."""
    status = server.stop()
    assert status == 0, f"medusa exited with {status}\n{server.describe()}"


def lftp(url: str, script: str, server: Medusa) -> None:
    assert LFTP is not None
    settings = (
        "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 15; "
        "set net:reconnect-interval-base 1; set cmd:fail-exit yes; "
    )
    run([LFTP, "-c", f"{settings} open {url}; {script}"], server, timeout=120)


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_serve_http_and_ftp_share_a_tree(runner: Runner, tmp_path: Path, backend: str) -> None:
    site = tmp_path / "site"
    write_tree(site, TREE)
    process = runner.start(
        "serve",
        str(site),
        "--http",
        "127.0.0.1:0",
        "--ftp",
        "127.0.0.1:0",
        "--backend",
        backend,
        listening=2,
    )
    ftp = ftp_endpoint(process.endpoints)
    assert ftp.where.startswith("ftp://127.0.0.1:")
    http = next(e for e in process.endpoints if e.name == "http")
    assert CURL is not None
    base = f"ftp://127.0.0.1:{ftp.port}"
    got = run([CURL, "-sS", "--max-time", "30", f"{base}/data/big.bin"], process).stdout
    assert got == TREE["data/big.bin"]
    assert curl(http.url + "/data/big.bin").body == got
    listing = run([CURL, "-sS", "--max-time", "30", f"{base}/data/"], process).stdout.decode()
    assert [line.split()[-1] for line in listing.splitlines()] == ["big.bin", "empty", "nested"]
    names = run([CURL, "-sS", "--max-time", "30", "--list-only", f"{base}/utf8/"], process).stdout
    assert names.decode("utf-8").splitlines() == ["caf\u00e9.txt"]
    # Anonymous is read-only: curl's upload is refused.
    (tmp_path / "up").write_bytes(b"nope")
    refused = subprocess.run(
        [CURL, "-sS", "--max-time", "30", "-T", str(tmp_path / "up"), f"{base}/up"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0, process.describe()
    assert not (site / "up").exists()
    stop(process)


@pytest.mark.skipif(LFTP is None or CURL is None, reason="lftp or curl is not installed")
def test_virtual_user_mirrors_both_ways(runner: Runner, tmp_path: Path, backend: str) -> None:
    served = tmp_path / "served"
    write_tree(served, TREE)
    config = tmp_path / "medusa.toml"
    config.write_text(
        f"""
[medusa]
backend = "{backend}"
grace = 2

[[server]]
type = "ftp"
listen = "127.0.0.1:0"
anonymous_root = "served"
passive_ports = [61500, 61599]
xferlog = true

[[server.user]]
name = "alice"
password = "{hash_password("in wonderland")}"
root = "served"
permissions = ["read", "write", "delete", "rename", "mkdir"]
"""
    )
    process = runner.start("serve", "-c", str(config))
    port = ftp_endpoint(process.endpoints).port
    url = f"ftp://alice:in%20wonderland@127.0.0.1:{port}"
    # Download the whole tree.
    copy = tmp_path / "copy"
    lftp(url, f"mirror / {copy}", process)
    assert read_tree(copy) == read_tree(served)
    # Upload a tree into a new directory, then compare.
    upload = tmp_path / "upload"
    write_tree(upload, {"a.bin": os.urandom(300_000), "sub/b.txt": b"b\n", "sub/c/d": b"d"})
    lftp(url, f"mirror -R {upload} /uploaded", process)
    assert read_tree(served / "uploaded") == read_tree(upload)
    # curl uploads with -T, and --ftp-create-dirs.
    assert CURL is not None
    run(
        [
            CURL,
            "-sS",
            "--max-time",
            "30",
            "-T",
            str(upload / "a.bin"),
            f"{url}/x/y/a.bin",
            "--ftp-create-dirs",
        ],
        process,
    )
    assert (served / "x" / "y" / "a.bin").read_bytes() == (upload / "a.bin").read_bytes()
    assert not [p for p in served.rglob("*.part")]  # no temporary files left
    stop(process)


@pytest.mark.skipif(LFTP is None, reason="lftp is not installed (apt-get install lftp)")
def test_an_upload_cut_by_sigkill_is_cleaned_at_the_next_start(
    runner: Runner, tmp_path: Path, backend: str
) -> None:
    """The server is killed (SIGKILL) in the middle of a STOR: its temporary file stays on
    disk; the next start removes it (and says so on standard error), and lftp never sees
    it or a half file under the real name."""
    served = tmp_path / "served"
    write_tree(served, {"a.txt": b"a\n"})
    config = tmp_path / "medusa.toml"
    config.write_text(
        f"""
[medusa]
backend = "{backend}"

[[server]]
type = "ftp"
listen = "127.0.0.1:0"

[[server.user]]
name = "alice"
password = "{hash_password("in wonderland")}"
root = "served"
permissions = ["read", "write"]
"""
    )
    process = runner.start("serve", "-c", str(config))
    ftp = ftplib.FTP()  # noqa: S321 (the FTP server under test)
    ftp.connect("127.0.0.1", ftp_endpoint(process.endpoints).port, timeout=30)
    try:
        ftp.login("alice", "in wonderland")
        ftp.voidcmd("TYPE I")
        conn = ftp.transfercmd("STOR big.bin")
        conn.sendall(b"x" * 300_000)

        def partial() -> list[Path]:
            return [p for p in served.iterdir() if p.name.startswith(".big.bin.")]

        wait_until(lambda: bool(partial()) and partial()[0].stat().st_size > 0, "the upload")
        process.proc.kill()
        process.wait()
        conn.close()
    finally:
        ftp.close()
    [temporary] = partial()
    assert temporary.name.endswith(".part")
    assert not (served / "big.bin").exists()
    process = runner.start("serve", "-c", str(config))
    wait_until(lambda: not temporary.exists(), "the stale temporary file to be removed")
    wait_until(lambda: temporary.name in process.stderr(), "the log line")
    assert "upload interrupted when a server process was killed" in process.stderr()
    url = f"ftp://alice:in%20wonderland@127.0.0.1:{ftp_endpoint(process.endpoints).port}"
    assert LFTP is not None
    listing = run(
        [LFTP, "-c", f"set ftp:ssl-allow no; set net:max-retries 1; open {url}; cls -1a /"],
        process,
    ).stdout.decode()
    assert [line.strip("/") for line in listing.split()] == ["a.txt"]
    stop(process)
