"""An HTTP server's access log through medusa-logging loggers (skipped when medusa-http is
not installed: this package depends on core only)."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread, require_tool, wait_until
from medusa.logging import FileLogger, MultiLogger, SyslogLogger
from medusa.logging.testing import Rsyslog

http_server = pytest.importorskip("medusa.http")


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_access_log_to_file_and_rsyslog(tmp_path: Path, backend: str) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "hello.txt").write_text("Hello\n")
    require_tool("rsyslogd", "apt-get install rsyslog")
    with Rsyslog(tmp_path / "rsyslog") as rsyslog:
        file_log = FileLogger(tmp_path / "access.log")
        syslog = SyslogLogger(
            transport="tcp", port=rsyslog.tcp_port, app_name="httpd", msgid="access"
        )
        access = MultiLogger([file_log, syslog])
        server = http_server.HTTPServer(
            ("127.0.0.1", 0), root=str(tmp_path / "site"), access_log=access
        )
        try:
            with ServerThread([server], backend=backend):
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                for path in ("/hello.txt", "/missing", "/hello.txt"):
                    conn.request("GET", path)
                    conn.getresponse().read()
                conn.close()
                wait_until(lambda: len(rsyslog.records(app="httpd")) == 3, what="3 lines")
            assert file_log.flush()
        finally:
            access.close()
        lines = (tmp_path / "access.log").read_text().splitlines()
        assert [r["msg"] for r in rsyslog.records(app="httpd")] == lines
        assert [line.split('"')[1] for line in lines] == [
            "GET /hello.txt HTTP/1.1",
            "GET /missing HTTP/1.1",
            "GET /hello.txt HTTP/1.1",
        ]
        assert [line.split('"')[2].split()[0] for line in lines] == ["200", "404", "200"]
        assert all(r["msgid"] == "access" for r in rsyslog.records(app="httpd"))
