"""The cache of recently verified passwords (core's ``credentialcache``) and its use by
:func:`medusa.core.passwords.verify_password`."""

from __future__ import annotations

from pathlib import Path

from medusa.core.credentialcache import CredentialCache
from medusa.core.passwords import (
    PasswordFile,
    hash_password,
    recently_verified,
    set_password,
    verify_password,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_success_is_remembered_for_its_lifetime_only() -> None:
    clock = Clock()
    cache = CredentialCache(lifetime=300.0, clock=clock)
    assert not cache.verified("secret", "$scrypt$entry")
    cache.remember("secret", "$scrypt$entry")
    assert cache.verified("secret", "$scrypt$entry")
    clock.now += 299.0
    assert cache.verified("secret", "$scrypt$entry")
    clock.now += 1.0
    assert not cache.verified("secret", "$scrypt$entry")


def test_another_password_or_a_changed_entry_never_matches() -> None:
    cache = CredentialCache()
    cache.remember("secret", "$scrypt$entry")
    assert not cache.verified("Secret", "$scrypt$entry")
    assert not cache.verified("secret", "$scrypt$new-entry")  # the password was changed
    assert not cache.verified("secret\x00", "$scrypt$entry")
    assert not cache.verified("\udcff", "$scrypt$entry")  # a lone surrogate: no error


def test_the_cache_is_bounded() -> None:
    clock = Clock()
    cache = CredentialCache(lifetime=10.0, size=3, clock=clock)
    for number in range(3):
        cache.remember(f"p{number}", "$e")
    clock.now += 20.0  # all three expired: dropped when a fourth comes
    cache.remember("p3", "$e")
    assert cache.verified("p3", "$e")
    cache.remember("p4", "$e")
    cache.remember("p5", "$e")
    cache.remember("p6", "$e")  # full of live ones: emptied, then this one
    assert cache.verified("p6", "$e")
    assert not cache.verified("p3", "$e")


def test_verify_password_remembers_successes_not_failures() -> None:
    encoded = hash_password("right password")
    assert not recently_verified("right password", encoded)
    assert not verify_password("wrong password", encoded)
    assert not recently_verified("wrong password", encoded)
    assert verify_password("right password", encoded)
    assert recently_verified("right password", encoded)
    assert verify_password("right password", encoded)
    assert not verify_password("wrong password", encoded)  # still checked with scrypt
    assert not recently_verified("right password", hash_password("right password"))


def test_password_file_success_remembered_until_the_entry_changes(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    set_password(path, "alice", "in wonderland")
    passwords = PasswordFile(path)
    assert not passwords.recently_verified("alice", "in wonderland")
    assert passwords.verify("alice", "in wonderland")
    assert passwords.recently_verified("alice", "in wonderland")
    assert not passwords.recently_verified("bob", "in wonderland")
    set_password(path, "alice", "through the looking glass")
    assert passwords.reload()
    assert not passwords.recently_verified("alice", "in wonderland")
    assert not passwords.verify("alice", "in wonderland")
