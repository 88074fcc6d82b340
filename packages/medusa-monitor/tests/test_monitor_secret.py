"""The secret and the challenge-response: HMAC-SHA256 over a fresh nonce, constant-time
check, secrets only from files (private ones) or environment variables, 16 bytes at least."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import pytest

from medusa.monitor.secret import (
    NONCE_BYTES,
    SecretError,
    answer_challenge,
    check_secret,
    load_secret,
    new_nonce,
    read_secret_file,
    secret_from_env,
    verify_answer,
)

SECRET = b"correct horse battery staple"


def test_answer_is_hmac_sha256_of_the_nonce() -> None:
    nonce = new_nonce()
    assert answer_challenge(SECRET, nonce) == hmac.new(SECRET, nonce, hashlib.sha256).digest()
    assert verify_answer(SECRET, nonce, answer_challenge(SECRET, nonce))
    assert not verify_answer(SECRET, nonce, answer_challenge(SECRET + b"!", nonce))
    assert not verify_answer(SECRET, new_nonce(), answer_challenge(SECRET, nonce))
    assert not verify_answer(SECRET, nonce, b"")


def test_nonces_are_fresh_and_long() -> None:
    nonces = {new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(len(n) == NONCE_BYTES >= 16 for n in nonces)


def test_short_secret_refused() -> None:
    with pytest.raises(SecretError, match="at least 16"):
        check_secret(b"x" * 15)
    assert check_secret(b"x" * 16) == b"x" * 16
    with pytest.raises(SecretError, match="longer"):
        check_secret(b"x" * 5000)


def test_secret_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(SECRET + b"\r\n")
    path.chmod(0o600)
    assert read_secret_file(path) == SECRET
    path.write_bytes(SECRET + b"\n\n")
    assert read_secret_file(path) == SECRET + b"\n"  # only one newline is taken off
    path.chmod(0o640)
    with pytest.raises(SecretError, match="chmod 600") as info:
        read_secret_file(path)
    assert info.value.option == "secret_file"
    path.chmod(0o400)
    assert read_secret_file(path) == SECRET + b"\n"
    with pytest.raises(SecretError, match="No such file"):
        read_secret_file(tmp_path / "missing")
    with pytest.raises(SecretError, match=r"Is a directory|not a regular file"):
        read_secret_file(tmp_path)
    short = tmp_path / "short"
    short.write_bytes(b"too short\n")
    short.chmod(0o600)
    with pytest.raises(SecretError, match="at least 16"):
        read_secret_file(short)


def test_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_TEST_SECRET", SECRET.decode())
    assert secret_from_env("MONITOR_TEST_SECRET") == SECRET
    monkeypatch.delenv("MONITOR_TEST_SECRET")
    with pytest.raises(SecretError, match="not set"):
        secret_from_env("MONITOR_TEST_SECRET")
    monkeypatch.setenv("MONITOR_TEST_SECRET", "short")
    with pytest.raises(SecretError, match="at least 16"):
        secret_from_env("MONITOR_TEST_SECRET")


def test_load_secret_takes_one_source(tmp_path: Path) -> None:
    assert load_secret() is None
    assert load_secret(secret=SECRET.decode()) == SECRET
    path = tmp_path / "s"
    path.write_bytes(SECRET)
    os.chmod(path, 0o600)
    assert load_secret(secret_file=path) == SECRET
    with pytest.raises(SecretError, match="only one"):
        load_secret(secret_file=path, secret_env="X")  # noqa: S106
