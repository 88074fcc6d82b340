"""A small Django project, made in a temporary directory, for the tests that serve Django
through its WSGI entry point (``wsgi.application``) and its ASGI one (``asgi.application``).

Its views: ``/`` a greeting; ``/form/`` a form protected by Django's CSRF middleware
(GET gives the form with its token and the ``csrftoken`` cookie; a POST with both
redirects with 302 to ``/thanks/?name=...``, without them gets 403); ``/thanks/``
shows the name. No database and no templates: settings are made for this and nothing
else.

Django's settings are global to a process: :func:`django_project` writes the project
once per process (a package named :data:`PACKAGE` on ``sys.path``), points
``DJANGO_SETTINGS_MODULE`` at it and calls ``django.setup()``; later calls return the same
directory. A test that uses it skips when Django is not installed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

__all__ = ["PACKAGE", "django_project"]

PACKAGE = "medusa_django_site"
"""The project's package name: ``medusa_django_site.wsgi:application``,
``medusa_django_site.asgi:application``."""

_FILES = {
    "__init__.py": "",
    "settings.py": """
        SECRET_KEY = "medusa-tests-only"
        DEBUG = False
        ALLOWED_HOSTS = ["*"]
        ROOT_URLCONF = "{package}.urls"
        INSTALLED_APPS: list[str] = []
        MIDDLEWARE = [
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
        ]
        DATABASES: dict[str, dict[str, str]] = {{}}
        USE_TZ = True
        TEMPLATES: list[dict[str, object]] = []
        LOGGING_CONFIG = None
        """,
    "views.py": """
        from django.http import HttpResponse
        from django.middleware.csrf import get_token
        from django.shortcuts import redirect
        from django.utils.html import escape
        from urllib.parse import urlencode


        def index(request):
            return HttpResponse("hello from django", content_type="text/plain")


        def form(request):
            if request.method == "POST":
                name = request.POST.get("name", "")
                return redirect("/thanks/?" + urlencode({{"name": name}}))
            token = get_token(request)
            return HttpResponse(
                '<form method="post"><input type="hidden" name="csrfmiddlewaretoken" '
                f'value="{{escape(token)}}"><input name="name"></form>'
            )


        def thanks(request):
            return HttpResponse(
                "thanks, " + request.GET.get("name", ""), content_type="text/plain"
            )
        """,
    "urls.py": """
        from django.urls import path

        from {package} import views

        urlpatterns = [
            path("", views.index),
            path("form/", views.form),
            path("thanks/", views.thanks),
        ]
        """,
    "wsgi.py": """
        import os

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{package}.settings")

        from django.core.wsgi import get_wsgi_application

        application = get_wsgi_application()
        """,
    "asgi.py": """
        import os

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "{package}.settings")

        from django.core.asgi import get_asgi_application

        application = get_asgi_application()
        """,
}

_made: Path | None = None


def django_project() -> Path:
    """Write the project (once per process), put it on ``sys.path``, set up Django, and
    return the directory that holds the package (``--app-dir`` for ``medusa serve``).

    Skips the calling test when Django is not installed (``pip install django``)."""
    global _made
    pytest.importorskip("django", reason="django is not installed (pip install django)")
    if _made is not None:
        return _made
    import django  # type: ignore[import-untyped]

    root = Path(tempfile.mkdtemp(prefix="medusa-django-"))
    package = root / PACKAGE
    package.mkdir()
    for name, text in _FILES.items():
        (package / name).write_text(textwrap.dedent(text).format(package=PACKAGE).lstrip())
    sys.path.insert(0, str(root))
    os.environ["DJANGO_SETTINGS_MODULE"] = f"{PACKAGE}.settings"
    django.setup()
    _made = root
    return root
