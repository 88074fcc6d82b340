"""The package imports."""

import medusa.dns


def test_dns_version() -> None:
    assert medusa.dns.__version__ == "0.1.0"
