"""Django through its WSGI entry point (``wsgi.application``) served by medusa-http's
WSGIHandler, driven by http.client on both loops: a view, a form POST checked by Django's
CSRF middleware (refused without the token, accepted with it), and the redirect after it.
The project is made by :mod:`tests.djangoproject`."""

from __future__ import annotations

import http.client
import importlib
import re
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from tests.djangoproject import PACKAGE, django_project

from medusa.core.testing import ServerThread, loop_backends
from medusa.http import HTTPServer, WSGIHandler


@pytest.fixture(params=loop_backends())
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    django_project()
    application = importlib.import_module(f"{PACKAGE}.wsgi").application
    server = HTTPServer(("127.0.0.1", 0), handlers=[WSGIHandler(application)], access_log=None)
    with ServerThread([server], backend=request.param):
        yield server.port


def test_view(port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.status == 200
    assert response.read() == b"hello from django"
    # CommonMiddleware's APPEND_SLASH: a redirect to the path with its slash.
    connection.request("GET", "/thanks?name=x")
    response = connection.getresponse()
    response.read()
    assert response.status == 301
    assert response.getheader("Location") == "/thanks/?name=x"
    connection.close()


def test_form_post_with_csrf_and_redirect(port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    connection.request("GET", "/form/")
    response = connection.getresponse()
    page = response.read().decode()
    assert response.status == 200
    cookie = response.getheader("Set-Cookie") or ""
    found = re.search(r"csrftoken=([^;]+)", cookie)
    assert found is not None, cookie
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None, page
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    # Without the token: Django's CSRF middleware refuses it.
    connection.request("POST", "/form/", body=urlencode({"name": "eve"}), headers=form_type)
    response = connection.getresponse()
    response.read()
    assert response.status == 403
    # With cookie and token: accepted, and redirected.
    body = urlencode({"name": "Zoë", "csrfmiddlewaretoken": token.group(1)})
    headers = {**form_type, "Cookie": f"csrftoken={found.group(1)}"}
    connection.request("POST", "/form/", body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    assert response.status == 302
    location = response.getheader("Location")
    assert location == "/thanks/?name=Zo%C3%AB"
    connection.request("GET", location)
    response = connection.getresponse()
    assert response.status == 200
    assert response.read().decode() == "thanks, Zoë"
    connection.close()
