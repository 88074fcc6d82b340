"""Twisted web under benchmark: a ``/hello`` resource over ``static.File`` for the root.

Usage: ``python bench/servers/twisted_app.py PORT ROOT [--default-logs]``

Uses the epoll reactor. Without ``--default-logs`` there is no access log. With it, the
``Site`` keeps its default access log (one combined-format line per response, through
Twisted's logging) and logging starts to stdout as ``twist web`` starts it (a text
observer on standard output).
"""

# Parts of Twisted's API are not annotated yet, and mypy cannot see zope.interface
# declarations without a plugin.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import sys
from typing import cast

from twisted.internet.epollreactor import EPollReactor
from twisted.internet.main import installReactor
from twisted.logger import ILogObserver, globalLogBeginner, textFileLogObserver
from twisted.web import resource, server, static

HELLO = b"Hello, World!"


class Hello(resource.Resource):
    isLeaf = True  # noqa: N815 (Twisted's name)

    def render_GET(self, request: server.Request) -> bytes:  # noqa: N802 (Twisted's name)
        request.setHeader(b"content-type", b"text/plain")
        return HELLO


class QuietSite(server.Site):
    """A Site without the access log, as the other servers run."""

    def log(self, request: object) -> None:
        pass


def main(argv: list[str]) -> None:
    default_logs = "--default-logs" in argv
    args = [arg for arg in argv if arg != "--default-logs"]
    if len(args) != 2:
        sys.exit("usage: twisted_app.py PORT ROOT [--default-logs]")
    port = int(args[0])
    reactor = EPollReactor()
    installReactor(reactor)
    root = static.File(args[1])
    root.putChild(b"hello", cast(resource.IResource, Hello()))
    if default_logs:
        globalLogBeginner.beginLoggingTo([cast(ILogObserver, textFileLogObserver(sys.stdout))])
        site = server.Site(root)
    else:
        site = QuietSite(root)
    reactor.listenTCP(port, site, backlog=511, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
