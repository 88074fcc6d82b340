"""A redirecting handler (the original Medusa's ``redirecting_handler``).

Each rule is a regular expression matched against the whole decoded request path and a
``Location`` template that may refer to the expression's groups (``\\1``, ``\\g<name>``).
The answer is a 3xx redirection (RFC 9110 §15.4) whose ``Location`` field (RFC 9110 §10.2.2)
is the expanded template, percent-encoded so that it never carries control characters, with
the request's query string appended unless the template has one of its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from medusa.http.request import Request

__all__ = ["REDIRECT_STATUSES", "RedirectHandler", "RedirectRule"]

REDIRECT_STATUSES = frozenset({301, 302, 307, 308})
"""The status codes a rule may answer with (RFC 9110 §15.4.2, §15.4.3, §15.4.8, §15.4.9)."""

# Characters left as they are in a Location: URI delimiters (RFC 3986 §2.2), "%" (so that
# escapes already in a template survive) and "~". Everything else outside the unreserved set,
# notably CR, LF, other control characters, spaces and non-ASCII (as UTF-8), is escaped.
_SAFE = ":/?#[]@!$&'()*+,;=%~"


@dataclass(frozen=True, slots=True)
class RedirectRule:
    """One redirection rule.

    Attributes:
        pattern: a regular expression (``str``) matched with :func:`re.fullmatch` against
            the decoded request path.
        location: the ``Location`` template (``str``); group references ``\\1`` and
            ``\\g<name>`` are expanded with :meth:`re.Match.expand`.
        status: the status code for this rule (301, 302, 307 or 308), or ``None`` for the
            handler's default.
    """

    pattern: str
    location: str
    status: int | None = None


@dataclass(frozen=True, slots=True)
class _Compiled:
    regex: re.Pattern[str]
    location: str
    status: int
    has_query: bool


def _check_status(status: object, where: str) -> int:
    if not isinstance(status, int) or isinstance(status, bool) or status not in REDIRECT_STATUSES:
        allowed = ", ".join(str(s) for s in sorted(REDIRECT_STATUSES))
        raise ValueError(f"{where}: status {status!r} is not a redirection status ({allowed})")
    return status


def _check_template(regex: re.Pattern[str], location: str, where: str) -> None:
    """Expand ``location`` against an empty match of a pattern with the same groups, so a
    reference to a missing group fails here rather than per request."""
    names = {index: name for name, index in regex.groupindex.items()}
    shape = "".join(f"(?P<{names[i]}>)" if i in names else "()" for i in range(1, regex.groups + 1))
    match = re.fullmatch(shape, "")
    assert match is not None
    try:
        match.expand(location)
    except (re.error, IndexError) as exc:
        raise ValueError(f"{where}: invalid Location template {location!r}: {exc}") from exc


class RedirectHandler:
    """Answer requests whose path matches a rule with a redirection.

    Rules are tried in order; the first whose pattern matches the whole decoded path
    (``request.path``) answers. Requests no rule matches fall through to the next handler
    of the chain.

    The ``Location`` (RFC 9110 §10.2.2) is the rule's template expanded with the match's
    groups, then percent-encoded (UTF-8) except for URI delimiters, ``%`` and ``~``: CR, LF
    and other control characters, spaces and non-ASCII characters never reach the header,
    whether they come from the template or from the request path. The request's query
    string is appended (``?query``) unless the template itself contains ``?``. The response
    (RFC 9110 §15.4) carries a small HTML page naming the new location.

    Note that a group captures the *decoded* path, so a ``?`` or ``#`` that the client sent
    percent-encoded is copied into the ``Location`` as a delimiter.

    Args:
        rules: a sequence of ``(pattern, location)`` pairs of ``str`` or of
            :class:`RedirectRule`; ``pattern`` is a regular expression, ``location`` a
            template for :meth:`re.Match.expand`.
        status: the default status code (``int``): 301 (Moved Permanently), 302 (Found),
            307 (Temporary Redirect) or 308 (Permanent Redirect).

    Raises:
        ValueError: when a pattern is not a valid regular expression, a template refers to a
            group its pattern does not have, a rule is malformed, or a status (the default or
            a rule's) is not 301, 302, 307 or 308.
    """

    def __init__(
        self,
        rules: Sequence[tuple[str, str]] | Sequence[RedirectRule],
        status: int = 301,
    ) -> None:
        self.status = _check_status(status, "RedirectHandler")
        compiled: list[_Compiled] = []
        for number, item in enumerate(rules):
            rule = self._rule(item, number)
            where = f"redirect rule {number} ({rule.pattern!r})"
            try:
                regex = re.compile(rule.pattern)
            except re.error as exc:
                raise ValueError(
                    f"{where}: invalid regular expression {rule.pattern!r}: {exc}"
                ) from exc
            _check_template(regex, rule.location, where)
            rule_status = self.status if rule.status is None else _check_status(rule.status, where)
            compiled.append(_Compiled(regex, rule.location, rule_status, "?" in rule.location))
        self.rules: tuple[RedirectRule, ...] = tuple(
            RedirectRule(c.regex.pattern, c.location, c.status) for c in compiled
        )
        self._compiled = tuple(compiled)

    @staticmethod
    def _rule(item: object, number: int) -> RedirectRule:
        if isinstance(item, RedirectRule):
            rule = item
        elif isinstance(item, tuple) and len(item) == 2:
            rule = RedirectRule(item[0], item[1])
        else:
            raise ValueError(
                f"redirect rule {number}: expected a (pattern, location) pair or a "
                f"RedirectRule, got {item!r}"
            )
        if not isinstance(rule.pattern, str) or not isinstance(rule.location, str):
            raise ValueError(
                f"redirect rule {number}: pattern and location must be str, got {item!r}"
            )
        return rule

    def __repr__(self) -> str:
        return f"<RedirectHandler {len(self._compiled)} rules>"

    def match(self, request: Request) -> bool:
        """Return True when a rule's pattern matches the whole of ``request.path``."""
        path = request.path
        return any(c.regex.fullmatch(path) is not None for c in self._compiled)

    def location(self, request: Request) -> tuple[int, str] | None:
        """Return ``(status, Location)`` for ``request`` from the first matching rule, or
        None when no rule matches."""
        path = request.path
        for c in self._compiled:
            found = c.regex.fullmatch(path)
            if found is None:
                continue
            target = quote(found.expand(c.location), safe=_SAFE)
            if request.query and not c.has_query:
                target += "?" + quote(request.query, safe=_SAFE)
            return c.status, target
        return None

    def handle_request(self, request: Request) -> None:
        """Answer ``request`` with the first matching rule's redirection (404 when none
        matches any more, which only happens if the handler was called without
        :meth:`match`)."""
        answer = self.location(request)
        if answer is None:
            request.error(404)
            return
        status, target = answer
        request.set_header("Location", target)
        request.error(status, f"The document has moved to {target}.")
