"""One of several single-process medusa servers sharing a port with ``SO_REUSEPORT``.

Usage: ``medusa run [--log-level L] bench/servers/medusa_reuseport.py PORT STATUS_PORT ROOT``

Started twice (or more) by ``bench/workers.py`` to compare the kernel's ``SO_REUSEPORT``
balancing with the master's shared sockets of ``--workers``. ``PORT`` (on 127.0.0.1, shared
by every process) serves ``ROOT`` and the status page, like ``medusa serve ROOT --status``;
``STATUS_PORT`` is this process's own, so that the benchmark can read the counters of each
process (a request to ``PORT`` reaches whichever process the kernel picks). The access log
is medusa run's default (off with ``--log-level warning``) on ``PORT``, off on
``STATUS_PORT``.
"""

from __future__ import annotations

import sys

from medusa.http import HTTPServer, StatusHandler

if len(sys.argv) != 4:
    sys.exit("usage: medusa run medusa_reuseport.py PORT STATUS_PORT ROOT")

servers = [
    HTTPServer(
        ("127.0.0.1", int(sys.argv[1])),
        handlers=[StatusHandler()],
        root=sys.argv[3],
        reuse_port=True,
    ),
    HTTPServer(("127.0.0.1", int(sys.argv[2])), handlers=[StatusHandler()], access_log=None),
]
