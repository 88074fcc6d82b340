"""A private rsyslogd for tests and benchmarks: UDP and TCP inputs on 127.0.0.1 writing every
message it parsed, field by field, as JSON Lines to a file.

Example::

    with Rsyslog(tmp_path) as rsyslog:
        logger = SyslogLogger(transport="udp", port=rsyslog.udp_port)
        ...
        wait_until(lambda: len(rsyslog.records(app="medusa")) == 10)

Needs ``rsyslogd`` (Debian: ``apt-get install rsyslog``). The daemon runs in the foreground
(``rsyslogd -n -f CONFIG -i PIDFILE``) with its own configuration and work directory, with no
``imuxsock`` or ``imklog`` (it never touches the machine's own logging), and is stopped by its
process id.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from medusa.core.testing import stop_process

__all__ = ["Rsyslog", "free_port"]

_TEMPLATE = (
    '{"time":"%timereported:::date-rfc3339%","host":"%hostname:::json%",'
    '"app":"%app-name:::json%","procid":"%procid:::json%","msgid":"%msgid:::json%",'
    '"sd":"%structured-data:::json%","facility":"%syslogfacility%",'
    '"severity":"%syslogseverity%","version":"%protocol-version%",'
    '"input":"%inputname%","msg":"%msg:::json%"}\\n'
)


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that is free for both TCP and UDP right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
            with socket.socket(socket.AF_INET, other) as second:
                try:
                    second.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise OSError("no free port found")


class Rsyslog:
    """rsyslogd on 127.0.0.1 with UDP and TCP inputs, for tests.

    Args:
        directory: where the configuration, work directory, pid file and output go.
        udp_port: UDP input port (``None``: a free one).
        tcp_port: TCP input port (``None``: a free one); TCP framing is detected per message
            (octet counting or LF), as rsyslog's imtcp does.

    Raises:
        FileNotFoundError: from :meth:`start` when ``rsyslogd`` is not installed.
        TimeoutError: when it does not listen within the start timeout.
    """

    def __init__(
        self, directory: Path, udp_port: int | None = None, tcp_port: int | None = None
    ) -> None:
        self.directory = Path(directory)
        self.udp_port = udp_port or free_port(socket.SOCK_DGRAM)
        self.tcp_port = tcp_port or free_port()
        self.output = self.directory / "messages.jsonl"
        self.config = self.directory / "rsyslog.conf"
        self.pidfile = self.directory / "rsyslogd.pid"
        self.workdir = self.directory / "work"
        self.errors = self.directory / "rsyslogd.err"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def write_config(self) -> None:
        """Write the daemon's configuration file."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        template = _TEMPLATE.replace('"', '\\"')
        self.config.write_text(
            f'global(workDirectory="{self.workdir}" maxMessageSize="64k")\n'
            'module(load="imudp")\n'
            'module(load="imtcp")\n'
            # A large UDP receive buffer, so that a burst is not lost in the kernel.
            f'input(type="imudp" address="127.0.0.1" port="{self.udp_port}" name="udp"'
            ' rcvbufSize="8m")\n'
            f'input(type="imtcp" address="127.0.0.1" port="{self.tcp_port}" name="tcp")\n'
            f'template(name="fields" type="string" string="{template}")\n'
            f'action(type="omfile" file="{self.output}" template="fields")\n'
        )

    def start(self, timeout: float = 10.0) -> Rsyslog:
        """Start rsyslogd and wait until both inputs take messages (a probe through each
        has reached the output file)."""
        binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
        if not Path(binary).exists():
            raise FileNotFoundError("rsyslogd is not installed (apt-get install rsyslog)")
        self.write_config()
        self.pidfile.unlink(missing_ok=True)
        with self.errors.open("ab") as errors:
            self.process = subprocess.Popen(
                [binary, "-n", "-f", str(self.config), "-i", str(self.pidfile)],
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
        self.starts += 1
        probe = f"probe-{self.starts}"
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        while seen != {"udp", "tcp"}:
            if self.process.poll() is not None:
                err = self.errors.read_text(errors="replace")
                raise RuntimeError(f"rsyslogd exited with {self.process.returncode}: {err}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"rsyslogd did not take messages within {timeout} s")
            self._probe(probe, seen)
            seen = {r["input"] for r in self.records(app=probe)}
            if seen != {"udp", "tcp"}:
                time.sleep(0.05)  # poll interval of a bounded wait, not synchronisation
        return self

    def _probe(self, app: str, seen: set[str]) -> None:
        message = f"<14>1 - - {app} - - - probe".encode()
        if "udp" not in seen:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.sendto(message, ("127.0.0.1", self.udp_port))
        if "tcp" not in seen:
            try:
                with socket.create_connection(("127.0.0.1", self.tcp_port), 1.0) as tcp:
                    tcp.sendall(b"%d %s" % (len(message), message))
            except OSError:
                pass

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the daemon (SIGTERM to its pid, SIGKILL after ``timeout`` seconds)."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, timeout)

    def records(self, app: str | None = None) -> list[dict[str, Any]]:
        """The messages written so far, as dicts (``time``, ``host``, ``app``, ``procid``,
        ``msgid``, ``sd``, ``facility``, ``severity``, ``version``, ``input``, ``msg``),
        only those with APP-NAME ``app`` when given. A last line still being written is
        left out."""
        try:
            text = self.output.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        for line in text.split("\n")[:-1]:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if app is None or record.get("app") == app:
                out.append(record)
        return out

    def __enter__(self) -> Rsyslog:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
