"""Tests of ``medusa.toml`` loading (:mod:`medusa.core.config`) and option validation
(:mod:`medusa.core.options`): every error names the file, the key and the reason, and
nothing is built from a bad file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from medusa.core.address import Address
from medusa.core.channel import Channel
from medusa.core.config import Config, build_config, load_config
from medusa.core.options import ConfigError, Option, non_negative, positive, validate_options
from medusa.core.plugins import server_plugins
from medusa.core.server import Server


class ToyServer(Server):
    """A server type with one option of its own, as protocol packages declare them."""

    name = "toy"
    default_port = 7070
    options: ClassVar[Mapping[str, Option]] = {
        **Server.options,
        "greeting": Option("greeting", (str,), "first line sent"),
        "root": Option("root", (str,), "a directory"),
    }

    def __init__(
        self, address: Any = 0, *, greeting: str = "hi", root: str = ".", **kwargs: Any
    ) -> None:
        super().__init__(address, **kwargs)
        self.greeting = greeting
        self.root = root

    @classmethod
    def resolve_paths(cls, kwargs: dict[str, Any], base_dir: str) -> dict[str, Any]:
        if "root" in kwargs:
            kwargs = {**kwargs, "root": os.path.join(base_dir, kwargs["root"])}
        return kwargs

    def make_channel(self) -> Channel:
        raise NotImplementedError


TYPES: dict[str, type[Server]] = {"toy": ToyServer}


def write(tmp_path: Path, text: str, name: str = "medusa.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def config_error(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, TYPES)
    error = info.value
    assert error.source == path
    assert str(error).startswith(f"{path}: ")
    return error


# -- a good file -----------------------------------------------------------------------------


def test_good_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[medusa]
backend = "asyncio"
grace = 3
log_level = "debug"

[[server]]
type = "toy"
listen = "127.0.0.1:0"
greeting = "hello"
root = "site"
max_connections = 5
idle_timeout = 2
write_high_water = 4096
write_low_water = 1024
sendfile = false

[[server]]
type = "toy"
listen = 9999

[[server]]
type = "toy"
listen = "unix:run/toy.sock"
""",
    )
    config = load_config(path, TYPES)
    assert isinstance(config, Config)
    assert (config.backend, config.grace, config.log_level) == ("asyncio", 3.0, "debug")
    assert isinstance(config.grace, float)
    first, second, third = config.servers
    assert isinstance(first, ToyServer)
    assert first.address == Address("127.0.0.1", 0)
    assert first.greeting == "hello"
    assert first.root == os.path.join(str(tmp_path), "site")  # relative to the file
    assert (first.max_connections, first.idle_timeout) == (5, 2.0)
    assert (first.write_high_water, first.write_low_water, first.sendfile) == (4096, 1024, False)
    assert second.address == Address("127.0.0.1", 9999)
    # A relative Unix socket path is taken from the file's directory too.
    assert third.address.path == os.path.join(str(tmp_path), "run", "toy.sock")


def test_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[[server]]\ntype = "toy"\n'), TYPES)
    assert (config.backend, config.grace, config.log_level) == ("auto", 10.0, "info")
    (server,) = config.servers
    assert server.address == Address("127.0.0.1", 7070)  # the type's default port


# -- errors: file, key, reason ---------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError) as info:
        load_config(path, TYPES)
    assert info.value.source == path
    assert info.value.key == ""
    assert "No such file" in info.value.reason
    assert str(info.value) == f"{path}: {info.value.reason}"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory") as info:
        load_config(str(tmp_path), TYPES)
    assert info.value.source == str(tmp_path)


def test_not_toml(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[[server]\ntype = http\n")
    assert error.key == ""
    assert "not valid TOML" in error.reason
    assert "line 1" in error.reason


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[[server]]\ntype = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not valid TOML: not UTF-8") as info:
        load_config(str(path), TYPES)
    assert info.value.source == str(path)


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('[[server]]\ntype = "toy"\nbogus = 1\n', "server[0].bogus", "unknown option"),
        (
            '[[server]]\ntype = "toy"\n[[server]]\ntype = "toy"\nlisten = true\n',
            "server[1].listen",
            "expected a string or an integer, got True",
        ),
        ('[[server]]\ntype = "toy"\nbacklog = "x"\n', "server[0].backlog", "expected an integer"),
        ('[[server]]\ntype = "toy"\nbacklog = 1.5\n', "server[0].backlog", "expected an integer"),
        (
            '[[server]]\ntype = "toy"\nidle_timeout = true\n',
            "server[0].idle_timeout",
            "got True",
        ),
        (
            '[[server]]\ntype = "toy"\nmax_connections = 0\n',
            "server[0].max_connections",
            "must be greater than 0",
        ),
        (
            '[[server]]\ntype = "toy"\nidle_timeout = -1\n',
            "server[0].idle_timeout",
            "must be 0 or more",
        ),
        ('[[server]]\ntype = "toy"\nsendfile = 1\n', "server[0].sendfile", "true or false"),
        ('[[server]]\ntype = "toy"\ngreeting = 5\n', "server[0].greeting", "a string"),
        (
            '[[server]]\ntype = "toy"\nlisten = "nowhere"\n',
            "server[0].listen",
            "expected PORT",
        ),
        ('[[server]]\ntype = "toy"\nlisten = 70000\n', "server[0].listen", "port must be"),
        ('[[server]]\ntype = "gopher"\n', "server[0].type", "no installed server type 'gopher'"),
        ('[[server]]\nlisten = "8080"\n', "server[0].type", "missing"),
        ("[[server]]\ntype = 5\n", "server[0].type", "expected a string, got 5"),
        ('[medusa]\nbackend = "auto"\n', "server", "nothing to run"),
        ("", "server", "nothing to run"),
        ('[server]\ntype = "toy"\n', "server", "array of tables"),
        ('server = ["toy"]\n', "server", "array of tables"),
        ('[[servers]]\ntype = "toy"\n', "servers", "unknown table"),
        ('medusa = 1\n[[server]]\ntype = "toy"\n', "medusa", "must be a table"),
        ('[medusa]\nbackend = "tokio"\n[[server]]\ntype = "toy"\n', "medusa.backend", "must be"),
        ('[medusa]\ngrace = -1\n[[server]]\ntype = "toy"\n', "medusa.grace", "0 or more"),
        ('[medusa]\ngrace = nan\n[[server]]\ntype = "toy"\n', "medusa.grace", "0 or more"),
        ('[medusa]\ngrace = "10"\n[[server]]\ntype = "toy"\n', "medusa.grace", "a number"),
        ('[medusa]\nlog_level = "loud"\n[[server]]\ntype = "toy"\n', "medusa.log_level", "one of"),
        ('[medusa]\nthreads = 4\n[[server]]\ntype = "toy"\n', "medusa.threads", "unknown option"),
        ('[medusa]\nworkers = 0\n[[server]]\ntype = "toy"\n', "medusa.workers", "1 or more"),
        ('[medusa]\nworkers = "many"\n[[server]]\ntype = "toy"\n', "medusa.workers", "auto"),
        (
            '[medusa]\nmax_requests = -1\n[[server]]\ntype = "toy"\n',
            "medusa.max_requests",
            "0 or more",
        ),
    ],
)
def test_errors_name_file_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    error = config_error(tmp_path, text)
    assert error.key == key
    assert reason in error.reason
    assert str(error) == f"{error.source}: {key}: {error.reason}"


def test_unknown_option_lists_the_known_ones(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[[server]]\ntype = "toy"\nlisten_on = 1\n')
    assert "greeting" in error.reason
    assert "listen" in error.reason


def test_bad_water_marks_name_the_server(tmp_path: Path) -> None:
    error = config_error(
        tmp_path,
        '[[server]]\ntype = "toy"\nwrite_high_water = 100\nwrite_low_water = 200\n',
    )
    assert error.key == "server[0]"
    assert "write_low_water" in error.reason


def test_installed_types_are_listed_in_the_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[[server]]\ntype = "gopher"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)  # the installed plugins
    installed = ", ".join(sorted(p.name for p in server_plugins())) or "none"
    assert info.value.reason.endswith(f"(installed: {installed})")


def test_build_config_from_a_mapping() -> None:
    config = build_config(
        {"server": [{"type": "toy", "listen": 0}]},
        source="inline",
        base_dir="/srv",
        server_types=TYPES,
    )
    assert [type(s) for s in config.servers] == [ToyServer]
    with pytest.raises(ConfigError, match=r"^inline: server: "):
        build_config({}, source="inline", base_dir="/", server_types=TYPES)


# -- validate_options ------------------------------------------------------------------------

OPTIONS = {
    o.name: o
    for o in (
        Option("count", (int,), "a count", positive),
        Option("ratio", (float,), "a ratio", non_negative),
        Option("either", (int, float), "a number"),
        Option("flag", (bool,), "a flag"),
        Option("name", (str,), "a name", lambda v: None if v else "must not be empty"),
    )
}


def validate(**table: Any) -> dict[str, Any]:
    return validate_options(table, OPTIONS, source="src", prefix="p")


def test_validate_accepts_good_values() -> None:
    assert validate(count=3, ratio=0.5, either=2, flag=False, name="x") == {
        "count": 3,
        "ratio": 0.5,
        "either": 2,
        "flag": False,
        "name": "x",
    }
    assert validate(ratio=2) == {"ratio": 2}  # an integer is a number
    assert validate() == {}


@pytest.mark.parametrize(
    ("table", "key", "reason"),
    [
        ({"count": True}, "p.count", "expected an integer, got True"),  # bool is not int
        ({"count": False}, "p.count", "got False"),
        ({"ratio": True}, "p.ratio", "expected a number, got True"),
        ({"either": True}, "p.either", "got True"),
        ({"count": 1.0}, "p.count", "expected an integer"),
        ({"count": "1"}, "p.count", "expected an integer"),
        ({"flag": 1}, "p.flag", "expected true or false, got 1"),
        ({"flag": "yes"}, "p.flag", "true or false"),
        ({"name": b"x"}, "p.name", "expected a string"),
        ({"name": ""}, "p.name", "must not be empty"),
        ({"count": 0}, "p.count", "must be greater than 0"),
        ({"ratio": -0.1}, "p.ratio", "must be 0 or more"),
        ({"colour": 1}, "p.colour", "unknown option (known: count, either, flag, name, ratio)"),
    ],
)
def test_validate_errors(table: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_options(table, OPTIONS, source="src", prefix="p")
    assert (info.value.source, info.value.key) == ("src", key)
    assert reason in info.value.reason
    assert str(info.value) == f"src: {key}: {info.value.reason}"


def test_config_error_without_key() -> None:
    error = ConfigError("file.toml", "", "broken")
    assert str(error) == "file.toml: broken"
    assert isinstance(error, ValueError)
