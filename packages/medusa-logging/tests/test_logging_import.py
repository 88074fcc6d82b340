"""The package imports."""

import medusa.logging


def test_logging_version() -> None:
    assert medusa.logging.__version__ == "0.1.0"
