"""``medusa serve``'s default log when standard error is a pipe nobody reads (a stalled
``| less``, a full journald socket): the server keeps answering, the lines it could not
hold are counted, and the rest is written once the pipe drains."""

from __future__ import annotations

import fcntl
import http.client
import os
import re
import signal
import subprocess
import threading
from pathlib import Path

from tests.conftest import IO_TIMEOUT, STOP_TIMEOUT, medusa_command, wait_until

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (\S+) ([A-Z]+) (.*)$")
LISTENING = re.compile(r"^medusa: http listening on http://([\d.]+):(\d+)/$")


def test_an_unread_stderr_pipe_does_not_stop_the_server(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_bytes(b"Hello, World!")
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)  # full after about 30 lines
    requests, buffer = 2000, 200
    serve = ["serve", str(tmp_path), "--http", "127.0.0.1:0", "--log-buffer", str(buffer)]
    process = subprocess.Popen(
        [*medusa_command(), *serve],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=write_end,
        text=True,
    )
    os.close(write_end)
    try:
        assert process.stdout is not None
        match = LISTENING.match(process.stdout.readline().strip())
        assert match, "no listening line"
        client = http.client.HTTPConnection(match[1], int(match[2]), timeout=IO_TIMEOUT)
        for _ in range(requests):  # nobody reads standard error meanwhile
            client.request("GET", "/hello.txt")
            response = client.getresponse()
            assert (response.status, response.read()) == (200, b"Hello, World!")

        received: list[bytes] = []
        reader = threading.Thread(
            target=lambda: received.extend(iter(lambda: os.read(read_end, 65536), b""))
        )
        reader.start()  # the pipe drains now
        after = 0

        def after_logged() -> bool:
            """Whether a ``GET /after.txt`` line came out; if not, one more such request
            (a 404: its line shows that the queue drained; one sent while the queue is
            still full is dropped and counted, as any other)."""
            nonlocal after
            if b"GET /after.txt" in b"".join(received):
                return True
            client.request("GET", "/after.txt")
            client.getresponse().read()
            after += 1
            return False

        wait_until(after_logged, "the line of /after.txt")
        client.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(STOP_TIMEOUT) == 0
        reader.join(IO_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        os.close(read_end)

    lines = b"".join(received).decode().splitlines()
    parsed = [(line, LINE.match(line)) for line in lines]
    assert all(m for _, m in parsed), [line for line, m in parsed if not m]
    messages = [(m[1], m[2], m[3]) for _, m in parsed if m]
    served = [text for name, _, text in messages if name == "medusa.http.access"]
    hello = [text for text in served if '"GET /hello.txt HTTP/1.1" 200 13' in text]
    notices = [
        int(text.split()[0])
        for name, level, text in messages
        if name == "medusa" and level == "WARNING" and "log lines dropped" in text
    ]
    assert notices, "no line reports the lines dropped"
    assert 0 < sum(notices) < requests + after
    after_lines = [text for text in served if '"GET /after.txt HTTP/1.1" 404' in text]
    assert after_lines
    # Every access line was either written or counted as dropped: none lost silently.
    assert len(hello) + len(after_lines) + sum(notices) == requests + after
