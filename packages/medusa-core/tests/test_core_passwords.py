"""Tests of salted scrypt password hashes, password files, their atomic rewriting, and the
``medusa passwd`` command run as a real subprocess."""

from __future__ import annotations

import base64
import os
import pty
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medusa.core.passwords import (
    PasswordFile,
    hash_password,
    set_password,
    valid_user_name,
    verify_password,
)

TIMEOUT = 30.0


def test_hash_format_and_verify() -> None:
    encoded = hash_password("s3cret é")
    parts = encoded.split("$")
    assert parts[:3] == ["", "scrypt", "n=16384,r=8,p=1"]
    assert len(base64.b64decode(parts[3])) == 16
    assert len(base64.b64decode(parts[4])) == 32
    assert verify_password("s3cret é", encoded)
    assert not verify_password("s3cret e", encoded)
    assert hash_password("s3cret é") != encoded  # a fresh salt each time


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plain",
        "$scrypt$n=16384,r=8,p=1$AAAA",
        "$bcrypt$n=16384,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,
        "$scrypt$n=16384,r=8$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,
        "$scrypt$n=1000,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,  # not a power of 2
        "$scrypt$n=2097152,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,  # n > 2**20
        "$scrypt$n=1048576,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,  # 1 GiB
        "$scrypt$n=16384,r=8,p=999$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,
        "$scrypt$n=16384,r=8,p=1$not*base64$" + "A" * 44,
        "$scrypt$n=16384,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",  # key too short
    ],
)
def test_malformed_or_absurd_hashes_are_refused(encoded: str) -> None:
    assert verify_password("x", encoded) is False


def test_user_names() -> None:
    assert valid_user_name("alice")
    assert valid_user_name("josé.b-1")
    for bad in ["", "a:b", "a b", "a\tb", "#a", "a\nb", "a\x00"]:
        assert not valid_user_name(bad), bad


def test_password_file(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text(
        "# users\n"
        "\n"
        f"alice:{hash_password('wonderland')}\n"
        "broken line without colon\n"
        "bob:$scrypt$garbage\n",
        encoding="utf-8",
    )
    passwords = PasswordFile(path)
    assert passwords.users == ["alice"]
    assert passwords.verify("alice", "wonderland")
    assert not passwords.verify("alice", "wrong")
    assert not passwords.verify("bob", "anything")
    assert not passwords.verify("nobody", "wonderland")


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        PasswordFile(tmp_path / "missing")


def test_set_password_writes_atomically_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    set_password(path, "alice", "one")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with path.open("a", encoding="utf-8") as file:
        file.write("# a comment\n")
    passwords = PasswordFile(path)
    assert passwords.users == ["alice"]
    before = path.read_text(encoding="utf-8")

    with path.open(encoding="utf-8") as old:
        set_password(path, "bob", "two")
        set_password(path, "alice", "three")
        assert old.read() == before  # the old file was replaced, not rewritten in place
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [line.partition(":")[0] for line in lines] == ["alice", "# a comment", "bob"]
    assert [p.name for p in tmp_path.iterdir()] == ["passwd"]  # no temporary file left

    assert passwords.reload() is True
    assert passwords.reload() is False
    assert passwords.users == ["alice", "bob"]
    assert passwords.verify("alice", "three")
    assert passwords.verify("bob", "two")


def test_set_password_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid user name"):
        set_password(tmp_path / "p", "a:b", "x")
    with pytest.raises(ValueError, match="empty password"):
        set_password(tmp_path / "p", "alice", "")
    assert not (tmp_path / "p").exists()


# -- medusa passwd ---------------------------------------------------------------------------


def passwd(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medusa.core.cli", "passwd", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )


def test_passwd_command(tmp_path: Path) -> None:
    path = tmp_path / "users"
    result = passwd(str(path), "alice", "--stdin", stdin="open sesame\n")
    assert result.returncode == 0, result.stderr
    assert PasswordFile(path).verify("alice", "open sesame")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("user", "stdin", "message"),
    [("alice", "\n", "empty password"), ("a:b", "x\n", "invalid user name")],
)
def test_passwd_command_refuses(tmp_path: Path, user: str, stdin: str, message: str) -> None:
    path = tmp_path / "users"
    result = passwd(str(path), user, "--stdin", stdin=stdin)
    assert result.returncode == 2
    assert message in result.stderr
    assert not path.exists()


def passwd_on_terminal(path: Path, answers: list[str]) -> tuple[int, str]:
    """Run ``medusa passwd PATH alice`` with a pseudo-terminal as its controlling terminal,
    typing each of ``answers`` after the prompt before it; return (exit status, output)."""
    prompts = [b"New password for alice: ", b"Again: "]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pseudo-terminal is its controlling terminal
        try:
            argv = [sys.executable, "-m", "medusa.core.cli", "passwd", str(path), "alice"]
            os.execv(sys.executable, argv)  # noqa: S606 (no shell wanted)
        finally:
            os._exit(127)
    output = b""
    seen = 0  # the output up to here was answered already
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # EIO: the child is gone
                break
            if not chunk:
                break
            output += chunk
            if answers and prompts[0] in output[seen:]:
                seen = output.index(prompts[0], seen) + len(prompts[0])
                os.write(fd, answers.pop(0).encode() + b"\n")
                prompts.pop(0)
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_passwd_command_on_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "users"
    code, output = passwd_on_terminal(path, ["open sesame", "open sesame"])
    assert code == 0, output
    assert "open sesame" not in output  # not echoed
    assert PasswordFile(path).verify("alice", "open sesame")


def test_passwd_command_refuses_a_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "users"
    code, output = passwd_on_terminal(path, ["one", "two"])
    assert code == 2
    assert "do not match" in output
    assert not path.exists()


def test_passwd_command_without_a_terminal_asks_for_stdin(tmp_path: Path) -> None:
    # No controlling terminal (a new session): getpass would warn and read the password
    # with echo from stdin; the command refuses and points at --stdin.
    path = tmp_path / "users"
    result = subprocess.run(
        [sys.executable, "-m", "medusa.core.cli", "passwd", str(path), "alice"],
        input="one\none\n",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        start_new_session=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == "medusa: no terminal to ask for the password on: use --stdin\n"
    assert not path.exists()
