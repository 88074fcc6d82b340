"""The status page (the original Medusa's ``status_handler``; compare nginx's stub_status):
uptime, every running server's counters, its open channels and, for HTTP servers, the
installed handlers in order and the counters of those that report their own (a handler
with a ``status_counters()`` method returning ``{name: int}``: the hosted ASGI and WSGI
applications). An HTML view for people and a JSON view (``?format=json``) for
scripts."""

from __future__ import annotations

import html
import json
import os
import time
from typing import Any
from urllib.parse import parse_qs

from medusa.core.server import Server, running_servers
from medusa.core.workers import current_worker, worker_rows
from medusa.http.request import Request

__all__ = ["StatusHandler"]

_STARTED = time.time()
MAX_CHANNELS = 200
"""Channels listed per server (the counts are always complete)."""


def _describe_handler(handler: object) -> str:
    return (
        repr(handler) if type(handler).__repr__ is not object.__repr__ else type(handler).__name__
    )


def _server_status(server: Server, now: float) -> dict[str, Any]:
    channels = []
    for channel in list(server.channels)[:MAX_CHANNELS]:
        # The client as trusted proxy headers gave it (HTTP's proxy_headers), else the
        # peer (the PROXY protocol's client when the server reads that header).
        peer = getattr(channel, "forwarded_peer", None) or channel.peer
        channels.append(
            {
                "peer": f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "-"),
                "age": round(now - channel.connected_at, 3),
                "idle": round(now - channel.last_activity, 3),
                "bytes_in": channel.bytes_in,
                "bytes_out": channel.bytes_out,
            }
        )
    entry: dict[str, Any] = {
        "type": server.name,
        "listening": server.listening,
        "counters": server.counters.as_dict(),
        "open_channels": len(server.channels),
        "channels": channels,
    }
    handlers = getattr(server, "handlers", None)
    if isinstance(handlers, tuple):
        entry["handlers"] = [_describe_handler(h) for h in handlers]
        applications = [
            {"handler": _describe_handler(h), **counters()}
            for h in handlers
            if (counters := getattr(h, "status_counters", None)) is not None
        ]
        if applications:
            entry["applications"] = applications
    return entry


_TOTALS = ("requests", "connections", "active", "bytes_in", "bytes_out", "restarts")


def status_document() -> dict[str, Any]:
    """Return the status as plain data (what the JSON view sends): this process's servers,
    and under ``--workers`` the whole server: ``worker`` (this process's number),
    ``workers`` (one row per worker process: pid, index, state, generation, started,
    requests, connections, active, bytes_in, bytes_out, restarts; the other workers' rows
    are at most about a second old) and ``totals`` (their sums)."""
    now = time.monotonic()
    document: dict[str, Any] = {
        "pid": os.getpid(),
        "uptime": round(time.time() - _STARTED, 3),
        "servers": [_server_status(server, now) for server in running_servers()],
    }
    rows = [row.as_dict() for row in worker_rows()]
    if rows:
        document["worker"] = current_worker()
        document["workers"] = rows
        document["totals"] = {key: sum(int(row[key]) for row in rows) for key in _TOTALS}
    return document


def _workers_html(document: dict[str, Any]) -> list[str]:
    esc = html.escape
    totals = document["totals"]
    columns = ("index", "pid", "state", "generation", "started", *_TOTALS)
    parts = [
        f"<h2>Workers ({len(document['workers'])}; this page from worker "
        f"{document['worker']})</h2><table><tr>",
        "".join(f"<th>{esc(c)}</th>" for c in columns),
        "</tr>",
    ]
    for row in document["workers"]:
        cells = []
        for column in columns:
            value = row[column]
            if column == "started":
                value = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(value)))
            cells.append(f"<td>{esc(str(value))}</td>")
        parts.append(f"<tr>{''.join(cells)}</tr>")
    parts.append(
        "<tr><th>total</th><td></td><td></td><td></td><td></td>"
        + "".join(f"<th>{totals[key]}</th>" for key in _TOTALS)
        + "</tr></table>"
    )
    return parts


def _applications_html(applications: list[dict[str, Any]]) -> list[str]:
    """The applications' counters (:meth:`status_counters` of their handlers), a row each."""
    esc = html.escape
    columns: list[str] = []
    for row in applications:
        columns.extend(key for key in row if key != "handler" and key not in columns)
    parts = ["<h3>Applications</h3><table><tr><th>application</th>"]
    parts.extend(f"<th>{esc(c)}</th>" for c in columns)
    parts.append("</tr>")
    for row in applications:
        cells = "".join(f"<td>{esc(str(row.get(c, '')))}</td>" for c in columns)
        parts.append(f"<tr><td>{esc(row['handler'])}</td>{cells}</tr>")
    parts.append("</table>")
    return parts


def _html(document: dict[str, Any]) -> str:
    esc = html.escape
    parts = [
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Medusa status</title>'
        "<style>body{font-family:sans-serif}td,th{padding:0 .6em;text-align:left}"
        "</style></head><body>",
        f"<h1>Medusa status</h1><p>pid {document['pid']}, up {document['uptime']:.0f} s</p>",
    ]
    if "workers" in document:
        parts.extend(_workers_html(document))
    for server in document["servers"]:
        where = ", ".join(server["listening"])
        parts.append(f"<h2>{esc(server['type'])} on {esc(where)}</h2>")
        parts.append("<table><tr>")
        counters = server["counters"]
        parts.append("".join(f"<th>{esc(k)}</th>" for k in counters if k != "started"))
        parts.append("</tr><tr>")
        parts.append("".join(f"<td>{v}</td>" for k, v in counters.items() if k != "started"))
        parts.append("</tr></table>")
        if "handlers" in server:
            items = "".join(f"<li>{esc(h)}</li>" for h in server["handlers"])
            parts.append(f"<h3>Handlers, in order</h3><ol>{items}</ol>")
        if "applications" in server:
            parts.extend(_applications_html(server["applications"]))
        parts.append(f"<h3>Open channels: {server['open_channels']}</h3><table>")
        parts.append(
            "<tr><th>peer</th><th>age (s)</th><th>idle (s)</th><th>in</th><th>out</th></tr>"
        )
        for ch in server["channels"]:
            parts.append(
                f"<tr><td>{esc(ch['peer'])}</td><td>{ch['age']:.1f}</td><td>{ch['idle']:.1f}</td>"
                f"<td>{ch['bytes_in']}</td><td>{ch['bytes_out']}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


class StatusHandler:
    """Answer GET/HEAD on ``path`` with the process's status.

    Args:
        path: the URL path of the page (default ``/status``).

    Raises:
        ValueError: when ``path`` does not start with ``/``.
    """

    def __init__(self, path: str = "/status") -> None:
        if not path.startswith("/"):
            raise ValueError(f"status path must start with '/': {path!r}")
        self.path = path

    def __repr__(self) -> str:
        return f"<StatusHandler {self.path}>"

    def match(self, request: Request) -> bool:
        """Take requests for :attr:`path`."""
        return request.path == self.path

    def handle_request(self, request: Request) -> None:
        """HTML by default, JSON with ``?format=json``; other methods get 405."""
        if request.method not in ("GET", "HEAD"):
            request.set_header("Allow", "GET, HEAD")
            request.error(405)
            return
        document = status_document()
        fmt = parse_qs(request.query).get("format", ["html"])[0]
        request.set_header("Cache-Control", "no-store")
        if fmt == "json":
            body = json.dumps(document, indent=1).encode()
            request.respond(200, body, content_type="application/json")
        else:
            request.respond(200, _html(document).encode(), content_type="text/html; charset=utf-8")
