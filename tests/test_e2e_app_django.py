"""Django through its ASGI entry point (``mysite.asgi:application``) under ``medusa serve
--app``: a small project written by the test into a temporary directory, with a view, a form
POST protected by CSRF and a redirect, driven by http.client and curl; mounted at ``/`` and
at a prefix (Django's ``SCRIPT_NAME``)."""

from __future__ import annotations

import http.client
import re
from pathlib import Path

import pytest
from tests.conftest import Medusa, Runner, curl, write_tree

pytestmark = pytest.mark.e2e

pytest.importorskip("django", reason="Django is not installed (pip install django)")

SETTINGS = b"""
SECRET_KEY = "medusa-test-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS = []
MIDDLEWARE = ["django.middleware.csrf.CsrfViewMiddleware"]
DATABASES = {}
USE_TZ = True
"""

URLS = b"""
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.urls import path


def hello(request):
    return HttpResponse(
        f"hello {request.path} script={request.META['SCRIPT_NAME']!r} info={request.path_info}",
        content_type="text/plain",
    )


def form(request):
    if request.method == "POST":
        return redirect("thanks", name=request.POST["name"])
    return HttpResponse(f"token={get_token(request)}", content_type="text/plain")


def thanks(request, name):
    return HttpResponse(f"thanks {name}", content_type="text/plain")


urlpatterns = [
    path("", hello),
    path("hello/", hello),
    path("form/", form),
    path("thanks/<str:name>/", thanks, name="thanks"),
]
"""

ASGI = b"""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = get_asgi_application()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_tree(
        tmp_path / "proj",
        {
            "mysite/__init__.py": b"",
            "mysite/settings.py": SETTINGS,
            "mysite/urls.py": URLS,
            "mysite/asgi.py": ASGI,
        },
    )
    return tmp_path / "proj"


def start(runner: Runner, project: Path, *extra: str) -> Medusa:
    return runner.start(
        "serve", "--http", "127.0.0.1:0", "--app", "mysite.asgi:application", *extra, cwd=project
    )


def test_view_form_with_csrf_and_redirect(runner: Runner, project: Path, tmp_path: Path) -> None:
    process = start(runner, project)
    endpoint = process.endpoint
    answer = curl(f"{endpoint.url}/hello/")
    assert answer.status == 200
    assert answer.body == b"hello /hello/ script='' info=/hello/"

    # The form: a token in the page and in the csrftoken cookie, then the POST with both.
    jar = tmp_path / "cookies.txt"
    page = curl("-c", str(jar), f"{endpoint.url}/form/")
    token = page.body.decode().removeprefix("token=")
    posted = curl(
        "-b",
        str(jar),
        "--data",
        f"csrfmiddlewaretoken={token}&name=medusa",
        f"{endpoint.url}/form/",
    )
    assert posted.status == 302
    assert posted.header("location") == "/thanks/medusa/"
    assert curl("-L", "-b", str(jar), f"{endpoint.url}/thanks/medusa/").body == b"thanks medusa"

    # Without the token: Django's CSRF check refuses it (403), through http.client.
    conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=30)
    conn.request(
        "POST",
        "/form/",
        body="name=forged",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = conn.getresponse()
    assert response.status == 403
    response.read()
    conn.close()
    assert process.stop() == 0
    assert re.search(r'"POST /form/ HTTP/1.1" 403', process.stderr())


def test_mounted_at_a_prefix(runner: Runner, project: Path) -> None:
    process = start(runner, project, "--app-prefix", "/site")
    answer = curl(f"{process.endpoint.url}/site/hello/")
    assert answer.body == b"hello /site/hello/ script='/site' info=/hello/"
    assert process.stop() == 0
