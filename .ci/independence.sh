#!/usr/bin/env bash
# Independence check: medusa-core with medusa-http, and with medusa-ftp, install and work
# on their own.
#
#  1. build the wheels of every distribution in packages/ (hatch build);
#  2. check their contents: PEP 420 namespace (no medusa/__init__.py), py.typed shipped,
#     no top-level package that would shadow the standard library (http, logging...);
#  3. make a bare venv; install httptools from the registry (the one third-party
#     dependency), then the two wheels with --no-index --find-links (nothing else);
#  4. `medusa plugins` lists http and nothing else; no other medusa.* package is
#     importable, and medusa comes from the venv, not from this checkout;
#  5. `medusa serve` (port 0, default loop: uvloop is not installed) serves a file that
#     curl fetches byte for byte; SIGTERM stops it with status 0;
#  6. mypy --strict type-checks a small program using the public API against the
#     installed wheels (py.typed works), and rejects a program with a type error;
#  7. after `pip uninstall medusa-http`, medusa-core alone still imports and runs, and
#     `medusa plugins` lists no server type;
#  8. then the medusa-ftp wheel alone on top: `medusa plugins` lists only ftp, no HTTP code
#     is importable, and `medusa serve --ftp` serves a file that curl fetches over ftp://.
#
# Usage: .ci/independence.sh   (env: PYTHON=python3.11, MYPY=mypy, KEEP=1 keeps the temp dir)
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
MYPY="${MYPY:-mypy}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/medusa-independence.XXXXXX")"
SERVER_PID=""

cleanup() {
    local status=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n "${KEEP:-}" ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$status"
}
trap cleanup EXIT

fail() { echo "independence: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

# start_server NAME ARGS...: run `medusa serve ARGS...` in the background (output in
# $WORK/NAME.out and .err) and set URL to the address its "NAME listening" line announces.
start_server() {
    local name=$1
    shift
    # The files exist before the server starts: a background job opens its redirections
    # itself, possibly after the loop below first reads them.
    : >"$WORK/$name.out"
    : >"$WORK/$name.err"
    "$MEDUSA" serve "$@" >>"$WORK/$name.out" 2>>"$WORK/$name.err" &
    SERVER_PID=$!
    URL=""
    for _ in $(seq 300); do  # up to 30 s for the listening line
        URL=$(sed -n "s|^medusa: $name listening on \($name://127\.0\.0\.1:[0-9]*\)/\$|\1|p" \
            "$WORK/$name.out")
        [[ -n "$URL" ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n "$URL" ]] || { cat "$WORK/$name.out" "$WORK/$name.err" >&2; fail "medusa serve ($name) did not start"; }
    echo "serving on $URL"
}

# stop_server NAME: SIGTERM, then the server must exit 0 within 30 s, without a traceback.
stop_server() {
    local name=$1 status=0
    kill -TERM "$SERVER_PID"
    for _ in $(seq 300); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SERVER_PID" 2>/dev/null && fail "medusa serve ($name) did not stop on SIGTERM"
    wait "$SERVER_PID" || status=$?
    SERVER_PID=""
    [[ $status == 0 ]] || { cat "$WORK/$name.err" >&2; fail "medusa serve ($name) exited with $status"; }
    ! grep -q Traceback "$WORK/$name.err" || { cat "$WORK/$name.err" >&2; fail "traceback"; }
}

command -v hatch >/dev/null || fail "hatch is not installed (pip install hatch)"
command -v curl >/dev/null || fail "curl is not installed (apt-get install curl)"
command -v "$MYPY" >/dev/null || fail "mypy not found (set MYPY=/path/to/mypy)"

# The checks must not see this checkout or the development environment.
unset PYTHONPATH VIRTUAL_ENV MYPYPATH
export PYTHONNOUSERSITE=1

step "build the wheels"
mkdir -p "$WORK/wheels" "$WORK/checkout"
# From a copy of the packages' files (tracked, or new and not ignored): medusa-http's build
# compiles its request path in place (mypyc), which must not touch the checkout's modules
# while a test run has them loaded.
(cd "$REPO" && git ls-files --cached --others --exclude-standard -- packages \
    | tar -c -T - -f -) | tar -x -C "$WORK/checkout" || fail "copy of packages/ failed"
for dir in "$WORK"/checkout/packages/medusa-*/; do
    pkg=$(basename "$dir")
    (cd "$dir" && hatch build -t wheel "$WORK/wheels" >/dev/null) \
        || fail "hatch build of $pkg failed"
done
ls "$WORK/wheels"
[[ $(ls "$WORK/wheels"/medusa_core-*.whl | wc -l) == 1 ]] || fail "expected one medusa-core wheel"
[[ $(ls "$WORK/wheels"/medusa_http-*.whl | wc -l) == 1 ]] || fail "expected one medusa-http wheel"

step "check the wheels' contents"
"$PYTHON" - "$WORK/wheels" <<'EOF' || fail "wheel contents"
import pathlib, sys, zipfile

expected = {
    f"medusa_{name}": f"medusa/{name}/"
    for name in ("core", "http", "ftp", "monitor", "chat", "dns", "logging")
}
for wheel in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    names = zipfile.ZipFile(wheel).namelist()
    dist = wheel.name.split("-")[0]
    prefix = expected[dist]
    code = [n for n in names if ".dist-info/" not in n]
    assert code, f"{wheel.name}: no files"
    outside = [n for n in code if not n.startswith(prefix)]
    assert not outside, f"{wheel.name}: files outside {prefix}: {outside}"
    assert "medusa/__init__.py" not in names, f"{wheel.name}: medusa/__init__.py breaks PEP 420"
    assert prefix + "py.typed" in names, f"{wheel.name}: no {prefix}py.typed"
    assert prefix + "__init__.py" in names, f"{wheel.name}: no {prefix}__init__.py"
    assert not any("/tests/" in n or n.startswith("tests/") for n in names), f"{wheel.name}: tests"
    print(f"{wheel.name}: {len(code)} files under {prefix}, py.typed shipped")
EOF

step "bare venv"
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
VPIP=("$VPY" -m pip --disable-pip-version-check -q)

step "httptools from the registry"
"${VPIP[@]}" install "httptools>=0.6" || fail "pip install httptools"

step "medusa-core and medusa-http from the wheels only"
# No index and no find-links but ours: the pip configuration of this machine is ignored.
env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
    "${VPIP[@]}" install --no-index --find-links "$WORK/wheels" --no-deps \
    "$WORK"/wheels/medusa_core-*.whl "$WORK"/wheels/medusa_http-*.whl \
    || fail "pip install of the wheels"
"$VPY" -m pip --disable-pip-version-check list --format=freeze

cd "$WORK"  # away from the checkout: nothing of it may be on sys.path

step "installed distributions are exactly core, http and httptools"
"$VPY" - <<'EOF' || fail "installed distributions"
from importlib.metadata import distributions
names = {d.metadata["Name"].lower().replace("_", "-") for d in distributions()}
extra = names - {"medusa-core", "medusa-http", "httptools", "pip", "setuptools", "wheel"}
assert not extra, f"unexpected distributions: {sorted(extra)}"
assert {"medusa-core", "medusa-http", "httptools"} <= names, sorted(names)
print(sorted(names))
EOF

# The lines of the "server types (medusa.servers):" section of `medusa plugins` output.
server_types() { awk '/^server types /{on=1; next} /^$/{on=0} on' "$1"; }

step "medusa plugins lists only http"
MEDUSA="$WORK/venv/bin/medusa"
[[ -x "$MEDUSA" ]] || fail "no medusa console script in the venv"
"$MEDUSA" plugins | tee "$WORK/plugins-all.txt"
server_types "$WORK/plugins-all.txt" >"$WORK/plugins.txt"
[[ $(grep -c . "$WORK/plugins.txt") == 1 ]] || fail "medusa plugins lists more than one server type"
grep -Eq '^  http +medusa-http ' "$WORK/plugins.txt" || fail "medusa plugins does not list http"

step "no sibling package, nothing from the checkout"
"$VPY" - "$REPO" "$WORK/venv" <<'EOF' || fail "imports"
import importlib.util, os, pkgutil, sys

repo, venv = (os.path.realpath(p) for p in sys.argv[1:3])
import medusa, medusa.core, medusa.http, http.client, logging

found = sorted(m.name for m in pkgutil.iter_modules(medusa.__path__))
assert found == ["core", "http"], f"medusa.* packages: {found}"
for sibling in ("ftp", "chat", "monitor", "logging", "resolver", "auth", "xmlrpc", "script"):
    assert importlib.util.find_spec(f"medusa.{sibling}") is None, f"medusa.{sibling} importable"
for path in list(medusa.__path__) + [medusa.core.__file__, medusa.http.__file__]:
    real = os.path.realpath(path)
    assert real.startswith(venv + os.sep), f"{path} is not in the venv"
    assert not real.startswith(repo + os.sep), f"{path} comes from the checkout"
for std in (http.client, logging):
    assert not os.path.realpath(std.__file__).startswith(venv + os.sep), f"{std} shadowed"
assert importlib.util.find_spec("uvloop") is None, "uvloop should not be installed here"
print("medusa packages:", found)
EOF

step "medusa serve a file, fetch it with curl"
mkdir -p "$WORK/site/sub"
"$VPY" -c "import os; open('$WORK/site/sub/file.bin', 'wb').write(os.urandom(200000))"
printf 'independent\n' > "$WORK/site/index.html"
start_server http "$WORK/site" --http 127.0.0.1:0
curl -sS --fail --max-time 30 --noproxy '*' -o "$WORK/got.bin" "$URL/sub/file.bin" \
    || fail "curl of the file failed"
cmp "$WORK/got.bin" "$WORK/site/sub/file.bin" || fail "the fetched file differs"
[[ "$(curl -sS --fail --max-time 30 --noproxy '*' "$URL/")" == "independent" ]] \
    || fail "index.html not served"
[[ "$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 --noproxy '*' "$URL/sub")" == 301 ]] \
    || fail "no 301 for a directory without its slash"
stop_server http

step "mypy --strict against the installed wheels"
cat > "$WORK/mypy.ini" <<'EOF'
[mypy]
strict = True
warn_unreachable = True
EOF
cat > "$WORK/smoke.py" <<'EOF'
"""Uses the public API of medusa-core and medusa-http, fully typed."""

from __future__ import annotations

import asyncio

import medusa.core
from medusa.core import Address, Counters, Server
from medusa.http import FileHandler, Handler, HTTPServer, Request


class Hello:
    def match(self, request: Request) -> bool:
        return request.path == "/hello"

    def handle_request(self, request: Request) -> None:
        request.respond(200, b"hello\n", content_type="text/plain")


def build(root: str) -> list[Server]:
    handler: Handler = Hello()
    server = HTTPServer(Address.parse("127.0.0.1:0"), handlers=[handler, FileHandler(root)])
    counters: Counters = server.counters
    requests: int = counters.requests
    assert requests == 0
    return [server]


def main() -> None:
    loop: asyncio.AbstractEventLoop = medusa.core.new_event_loop("asyncio")
    loop.close()
    medusa.core.run(build("."), backend="asyncio", grace=1.0)
EOF
cat > "$WORK/wrong.py" <<'EOF'
from medusa.http import HTTPServer

port: str = HTTPServer(("127.0.0.1", 0)).port
EOF
"$MYPY" --config-file "$WORK/mypy.ini" --python-executable "$VPY" --no-incremental \
    "$WORK/smoke.py" || fail "mypy --strict rejects a correct use of the public API"
if "$MYPY" --config-file "$WORK/mypy.ini" --python-executable "$VPY" --no-incremental \
    "$WORK/wrong.py" >"$WORK/wrong.txt" 2>&1; then
    fail "mypy accepted a type error: the installed packages' types are not seen"
fi
grep -q 'Incompatible types in assignment' "$WORK/wrong.txt" \
    || { cat "$WORK/wrong.txt" >&2; fail "mypy did not see HTTPServer.port's type"; }
echo "mypy: the public API type-checks; a type error is caught"

step "medusa-core alone"
"${VPIP[@]}" uninstall -y medusa-http
"$VPY" -c "import medusa.core; import importlib.util as u; assert u.find_spec('medusa.http') is None" \
    || fail "medusa-core does not import alone"
"$MEDUSA" plugins | tee "$WORK/plugins-core-all.txt"
server_types "$WORK/plugins-core-all.txt" >"$WORK/plugins-core.txt"
grep -q "^  none (install medusa-http" "$WORK/plugins-core.txt" \
    || fail "medusa plugins lists server types with medusa-core alone"
set +e
"$MEDUSA" serve "$WORK/site" >"$WORK/core-serve.out" 2>&1
status=$?
set -e
[[ $status == 2 ]] || { cat "$WORK/core-serve.out" >&2; fail "medusa serve without a server type: $status"; }
grep -q "no server type is installed" "$WORK/core-serve.out" || fail "no clear message"

step "medusa-core and medusa-ftp alone: an FTP server with no HTTP code"
env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
    "${VPIP[@]}" install --no-index --no-deps "$WORK"/wheels/medusa_ftp-*.whl \
    || fail "pip install of the medusa-ftp wheel"
"$MEDUSA" plugins | tee "$WORK/plugins-ftp-all.txt"
server_types "$WORK/plugins-ftp-all.txt" >"$WORK/plugins-ftp.txt"
[[ $(grep -c . "$WORK/plugins-ftp.txt") == 1 ]] || fail "medusa plugins lists more than ftp"
grep -Eq '^  ftp +medusa-ftp ' "$WORK/plugins-ftp.txt" || fail "medusa plugins does not list ftp"
"$VPY" -c "import importlib.util as u, medusa.ftp; assert u.find_spec('medusa.http') is None" \
    || fail "medusa.http is importable next to medusa-ftp alone"
start_server ftp "$WORK/site" --ftp 127.0.0.1:0
curl -sS --fail --max-time 30 --noproxy '*' -o "$WORK/ftp-got.bin" "$URL/sub/file.bin" \
    || fail "curl over ftp:// failed"
cmp "$WORK/ftp-got.bin" "$WORK/site/sub/file.bin" || fail "the file fetched over FTP differs"
stop_server ftp

echo "independence: OK"
