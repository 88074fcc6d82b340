"""A Starlette application for the benchmark (``bench/app_bench.py``): ``/json`` answers
``{"message": "Hello, World!"}`` (the TechEmpower JSON test), ``/hello`` the 13-byte text."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


async def json_endpoint(request: Request) -> Response:
    return JSONResponse({"message": "Hello, World!"})


async def hello(request: Request) -> Response:
    return PlainTextResponse("Hello, World!")


app = Starlette(routes=[Route("/json", json_endpoint), Route("/hello", hello)])
