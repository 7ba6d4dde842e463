"""Runtime stage against a real Docker engine: tiny throwaway repos, and nothing left behind.

Every test checks, after the context manager has exited, that no container, network, volume or
image with the label `portfolio-grader.run=<run_id>` remains. Images are tiny layers on the
locally present python:3.12-slim and redis:7; nothing is pulled.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from portfolio_grader.models import Manifest, RepoFacts, Source, Workspace
from portfolio_grader.runtime import RuntimeOptions, start
from portfolio_grader.runtime.builders import detect_builder

from .test_samples import SAMPLE_NAMES, SAMPLES

pytestmark = pytest.mark.docker

KNOWN_BUILDERS = ("docker buildx (BuildKit)", "docker CLI ", "docker SDK (classic builder, no BuildKit)")
HTTP_SERVER = 'CMD ["python", "-m", "http.server", "8000"]\n'


@pytest.fixture(scope="module")
def engine():
    """A docker SDK client; CI fails without an engine, a laptop skips."""
    import docker

    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        reason = f"no Docker engine answered ({type(exc).__name__}): start dockerd or set DOCKER_HOST"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    for image in ("python:3.12-slim", "redis:7"):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            message = f"base image {image} is not present (the tests never pull)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
    yield client
    client.close()


def options(**kw) -> RuntimeOptions:
    return RuntimeOptions(run_id=f"t{uuid.uuid4().hex[:10]}", **{"start_timeout": 30, "build_timeout": 300, **kw})


def repo(tmp_path: Path, files: dict[str, str]) -> tuple[Workspace, Path]:
    for name, body in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    return Workspace(name=f"e2e {tmp_path.name}", source=Source(repo=str(tmp_path)), path=tmp_path), tmp_path


def leftovers(client, opts: RuntimeOptions) -> list[str]:
    flt = {"label": f"{opts.label}.run={opts.run_id}"}
    project = {"label": f"com.docker.compose.project=pg-{opts.run_id}"}
    found = [f"container {x.name}" for x in client.containers.list(all=True, filters=flt)]
    found += [f"container {x.name}" for x in client.containers.list(all=True, filters=project)]
    found += [f"network {x.name}" for x in client.networks.list(filters=flt)]
    found += [f"network {x.name}" for x in client.networks.list(filters=project)]
    found += [f"volume {x.name}" for x in client.volumes.list(filters=flt)]
    found += [f"volume {x.name}" for x in client.volumes.list(filters=project)]
    found += [f"image {x.tags}" for x in client.images.list(filters=flt)]
    found += [f"image {t}" for x in client.images.list() for t in x.tags if t.endswith(f":{opts.run_id}")]
    return found


def test_dockerfile_http_server_runs_sandboxed_and_is_removed(engine, tmp_path):
    ws, root = repo(tmp_path, {"Dockerfile": f"FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\nEXPOSE 8000\n{HTTP_SERVER}", "hello.txt": "hi"})
    opts = options()
    facts = RepoFacts(root=root, dockerfile="Dockerfile", exposed_ports=[8000])
    with start(ws, facts, opts) as handle:
        s = handle.service
        assert (s.kind, s.status) == ("docker", "running"), s.detail
        assert s.base_url and s.base_url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{s.base_url}/hello.txt", trust_env=False).text == "hi"
        assert s.builder == detect_builder().name and s.builder.startswith(KNOWN_BUILDERS)
        assert handle.alive()
        code, out = handle.exec("cat /app/hello.txt; exit 3")
        assert (code, out) == (3, "hi")
        # the sandbox
        attrs = engine.containers.get(s.api_container).attrs
        host = attrs["HostConfig"]
        assert host["Memory"] == 1024**3 and host["NanoCpus"] == 10**9 and host["PidsLimit"] == 256
        assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"] and not host["Privileged"]
        # no host path is mounted: only the grader's own volume for the app's folder (the root is read-only)
        assert all(m["Type"] == "volume" and m["Name"] == f"pg-{opts.run_id}-work" for m in attrs["Mounts"])
        assert host["ReadonlyRootfs"] and not host.get("Binds")
        bindings = [bd for ports in attrs["NetworkSettings"]["Ports"].values() if ports for bd in ports]
        assert bindings and all(bd["HostIp"] == "127.0.0.1" for bd in bindings)
        assert "PORT=8000" in attrs["Config"]["Env"] and "HOST=0.0.0.0" in attrs["Config"]["Env"]
        assert attrs["Config"]["Labels"]["portfolio-grader.run"] == opts.run_id
        [image] = engine.images.list(filters={"label": f"portfolio-grader.run={opts.run_id}"})
        assert image.tags == [f"portfolio-grader/{ws.name.replace(' ', '-').lower()}:{opts.run_id}"]
        logs = {tail.name: tail for tail in handle.logs()}
        assert set(logs) == {"build", "api"} and "GET /hello.txt" in logs["api"].text
    assert not handle.alive()
    assert leftovers(engine, opts) == []


def test_a_port_the_image_sets_itself_is_kept_and_found(engine, tmp_path):
    # no EXPOSE: the project's own `ENV PORT` is where it listens; the grader must not send it elsewhere
    ws, root = repo(tmp_path, {"Dockerfile": "FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\nENV PORT=5005\n"
                                             'CMD ["sh", "-c", "exec python -m http.server $PORT"]\n', "hi.txt": "hi"})
    opts = options()
    with start(ws, RepoFacts(root=root, dockerfile="Dockerfile"), opts) as handle:
        s = handle.service
        assert s.status == "running", s.detail
        assert httpx.get(f"{s.base_url}/hi.txt", trust_env=False).text == "hi"
        env = engine.containers.get(s.api_container).attrs["Config"]["Env"]
        assert "PORT=5005" in env and "PORT=8000" not in env and "HOST=0.0.0.0" in env
    assert leftovers(engine, opts) == []


def test_build_failure_names_the_step(engine, tmp_path):
    ws, root = repo(
        tmp_path,
        {"Dockerfile": "FROM python:3.12-slim\nCOPY . .\nRUN pip install -r requirement.txt\n" + HTTP_SERVER,
         "requirements.txt": "fastapi\n"},
    )
    opts = options()
    with start(ws, RepoFacts(root=root, dockerfile="Dockerfile"), opts) as handle:
        s = handle.service
        assert s.status == "build_failed", s.detail
        if s.builder.startswith(("docker buildx", "docker CLI")):
            assert s.detail == ("the image did not build: step 'RUN pip install -r requirement.txt' failed (exit 1): "
                                "ERROR: Could not open requirements file: [Errno 2] No such file or directory: "
                                "'requirement.txt'")
        else:
            assert "RUN pip install -r requirement.txt" in s.detail
        assert s.base_url is None and not handle.alive()
        [build] = handle.logs()
        assert build.name == "build" and "requirement.txt" in build.text
    assert leftovers(engine, opts) == []


def test_container_that_exits_is_crashed_with_its_log(engine, tmp_path):
    ws, root = repo(
        tmp_path,
        {"Dockerfile": 'FROM python:3.12-slim\nCMD ["python", "-c", "print(\'DATABASE_URL is not set\'); raise SystemExit(3)"]\n'},
    )
    opts = options()
    with start(ws, RepoFacts(root=root, dockerfile="Dockerfile"), opts) as handle:
        s = handle.service
        assert s.status == "container_crashed", s.detail
        assert "code 3" in s.detail and "log" in s.detail
        logs = {tail.name: tail.text for tail in handle.logs()}
        assert "DATABASE_URL is not set" in logs["api"]
    assert leftovers(engine, opts) == []


def test_cleanup_happens_when_the_grade_raises(engine, tmp_path):
    ws, root = repo(tmp_path, {"Dockerfile": f"FROM python:3.12-slim\n{HTTP_SERVER}"})
    opts = options()
    with pytest.raises(RuntimeError, match="probe exploded"):
        with start(ws, RepoFacts(root=root, dockerfile="Dockerfile"), opts) as handle:
            assert handle.service.up
            raise RuntimeError("probe exploded")
    assert leftovers(engine, opts) == []


COMPOSE = """
services:
  api:
    build: ./api
    container_name: my_api
    ports:
      - "8000:8000"
    environment:
      REDIS_URL: redis://cache:6379/0
    depends_on: [cache]
  cache:
    image: redis:7
    ports: ["6379:6379"]
    volumes: ["cachedata:/data"]
volumes:
  cachedata: {}
"""


def test_compose_api_with_redis(engine, tmp_path):
    ws, root = repo(
        tmp_path,
        {"docker-compose.yml": COMPOSE,
         "api/Dockerfile": f"FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\n{HTTP_SERVER}",
         "api/ping.txt": "pong"},
    )
    opts = options()
    facts = RepoFacts(root=root, compose_file="docker-compose.yml", manifest=Manifest(health="/ping.txt"))
    with start(ws, facts, opts) as handle:
        s = handle.service
        assert (s.kind, s.status) == ("compose", "running"), s.detail
        assert httpx.get(f"{s.base_url}/ping.txt", trust_env=False).text == "pong"
        assert "compose" in s.builder and s.builder.startswith(KNOWN_BUILDERS)
        assert handle.alive() and handle.exec("cat /app/ping.txt") == (0, "pong")
        # the API service can reach redis by its service name, inside the stack's network
        code, out = handle.exec(
            "python -c \"import socket; s=socket.create_connection(('cache', 6379), 5); s.sendall(b'PING\\r\\n');"
            " print(s.recv(16).decode().strip())\""
        )
        assert (code, out.strip()) == (0, "+PONG"), out
        api = engine.containers.get(s.api_container).attrs
        assert api["HostConfig"]["Memory"] == 1024**3 and api["HostConfig"]["CapDrop"] == ["ALL"]
        assert api["Config"]["Labels"]["portfolio-grader.run"] == opts.run_id
        for container in engine.containers.list(filters={"label": f"com.docker.compose.project=pg-{opts.run_id}"}):
            for bindings in container.attrs["NetworkSettings"]["Ports"].values():
                assert all(b["HostIp"] == "127.0.0.1" for b in bindings or [])
        logs = {tail.name: tail.text for tail in handle.logs()}
        assert {"build", "api", "cache", "compose"} <= set(logs)
        assert "Ready to accept connections" in logs["cache"] and "GET /ping.txt" in logs["api"]
        assert engine.volumes.list(filters={"label": f"portfolio-grader.run={opts.run_id}"})
    assert leftovers(engine, opts) == []


def test_compose_api_that_crashes_without_restart_policy(engine, tmp_path):
    ws, root = repo(
        tmp_path,
        {"compose.yaml": "services:\n  api:\n    build: .\n    ports: ['8000:8000']\n",
         "Dockerfile": 'FROM python:3.12-slim\nCMD ["python", "-c", "print(\'cannot connect to db\'); raise SystemExit(2)"]\n'},
    )
    opts = options()
    with start(ws, RepoFacts(root=root, compose_file="compose.yaml"), opts) as handle:
        s = handle.service
        assert s.status == "container_crashed", s.detail
        assert "code 2" in s.detail
        assert "cannot connect to db" in {t.name: t.text for t in handle.logs()}["api"]
    assert leftovers(engine, opts) == []


def sandbox_notes(handle) -> list[str]:
    """The handle's notes but the PORT it was given (every stack_repo() API publishes 8000 and sets no PORT)."""
    port = [n for n in handle.notes if "ran with PORT=8000, the container port the grader publishes" in n]
    assert len(port) == 1, handle.notes
    return [n for n in handle.notes if n not in port]


def stack_repo(tmp_path: Path, start: str, worker: str = "sleep 600") -> tuple[Workspace, Path]:
    """An API and a worker built from the repo, and redis; the API runs `start`, then serves its folder."""
    return repo(
        tmp_path,
        {"docker-compose.yml": "version: '3.8'\nservices:\n  api:\n    build: .\n    restart: unless-stopped\n"
                               "    ports: ['8000:8000']\n    depends_on: [cache]\n"
                               f"  worker:\n    build: .\n    command: ['sh', '-c', '{worker}']\n"
                               "  cache:\n    image: redis:7\n",
         "Dockerfile": f'FROM python:3.12-slim\nWORKDIR /app\nCMD ["sh", "-c", "{start} && exec python -m http.server 8000"]\n'},
    )


@contextmanager
def served_stack(client, tmp_path: Path, start_command: str, worker: str = "sleep 600"
                 ) -> Iterator[tuple[Any, RuntimeOptions, dict, dict]]:
    """Start stack_repo(); once its API serves /started.txt, yield (handle, options, {service: container attrs},
    {log name: text}); afterwards nothing of it may be left."""
    ws, root = stack_repo(tmp_path, start_command, worker)
    opts = options()
    with start(ws, RepoFacts(root=root, compose_file="docker-compose.yml"), opts) as handle:
        s = handle.service
        assert (s.kind, s.status) == ("compose", "running"), s.detail
        assert httpx.get(f"{s.base_url}/started.txt", trust_env=False).text == "started\n"
        found = client.containers.list(all=True, filters={"label": f"com.docker.compose.project=pg-{opts.run_id}"})
        attrs = {c.labels["com.docker.compose.service"]: c.attrs for c in found}
        yield handle, opts, attrs, {tail.name: tail.text for tail in handle.logs()}
    assert leftovers(client, opts) == []


def test_compose_api_that_writes_to_its_working_folder_keeps_a_read_only_root(engine, tmp_path):
    # a sqlite file beside the code: the working folder is a private writable copy of the image's, the root stays read-only
    with served_stack(engine, tmp_path, "echo started > started.txt") as (handle, opts, attrs, logs):
        assert handle.read_only is True and sandbox_notes(handle) == []
        assert attrs["api"]["HostConfig"]["ReadonlyRootfs"]
        [mount] = [m for m in attrs["api"]["Mounts"] if m["Destination"] == "/app"]
        assert mount["Type"] == "volume"
        assert engine.volumes.get(mount["Name"]).attrs["Labels"]["portfolio-grader.run"] == opts.run_id
        assert handle.exec("touch /app/x")[0] == 0
        code, out = handle.exec("touch /x")
        assert code != 0 and "Read-only file system" in out
        assert logs["compose"].count(" up -d ") == 1


def test_compose_api_that_writes_outside_its_folder_runs_again_writable_with_a_note(engine, tmp_path):
    with served_stack(engine, tmp_path, "echo started > started.txt && mkdir /srv/cache") as (handle, opts, attrs, logs):
        assert handle.read_only is False  # it did write to /srv, outside its working folder
        [note] = sandbox_notes(handle)
        assert note.startswith("the service 'api' could not run on a read-only root filesystem, so it ran on a "
                               "writable one"), note
        assert "Read-only file system" in note and "('worker') ran writable too" in note
        # the restart policy would have held the first attempt to the start deadline: EROFS in the log ended it
        assert handle.timings["start"] < opts.start_timeout
        assert not any(a["HostConfig"]["ReadonlyRootfs"] for a in attrs.values())
        assert not attrs["api"]["HostConfig"].get("Tmpfs") and attrs["api"]["HostConfig"]["CapDrop"] == ["ALL"]
        assert logs["compose"].count(" up -d ") == 2 and "[portfolio-grader] the service 'api'" in logs["compose"]


def test_compose_api_that_writes_only_to_tmp_runs_read_only_without_a_retry(engine, tmp_path):
    with served_stack(engine, tmp_path, "echo started > /tmp/started.txt && cd /tmp") as (handle, _, attrs, logs):
        assert handle.read_only is True and sandbox_notes(handle) == []
        for name in ("api", "worker"):
            host = attrs[name]["HostConfig"]
            assert host["ReadonlyRootfs"], name
            assert host["Tmpfs"] == {p: "rw,nosuid,nodev,size=256m" for p in ("/tmp", "/var/tmp", "/run")}, name
        assert not attrs["cache"]["HostConfig"]["ReadonlyRootfs"]  # a datastore keeps its writable root
        code, out = handle.exec("touch /opt/x")
        assert code != 0 and "Read-only file system" in out
        assert logs["compose"].count(" up -d ") == 1


def test_compose_worker_that_stops_on_the_read_only_root_runs_again_writable(engine, tmp_path):
    worker = "echo busy > /srv/worker.txt && sleep 600"
    with served_stack(engine, tmp_path, "echo started > /tmp/started.txt && cd /tmp", worker) as (handle, _, attrs, _):
        assert handle.read_only is False
        [note] = sandbox_notes(handle)
        assert note.startswith("the service 'worker' could not run on a read-only root filesystem") and "('api')" in note
        assert attrs["worker"]["State"]["Running"] and not attrs["worker"]["HostConfig"]["ReadonlyRootfs"]
        assert handle.exec("cat /tmp/started.txt") == (0, "started\n")


def test_compose_refused_starts_nothing(engine, tmp_path):
    ws, root = repo(
        tmp_path,
        {"docker-compose.yml": "services:\n  api:\n    image: python:3.12-slim\n    volumes: ['/var/run/docker.sock:/var/run/docker.sock']\n"},
    )
    opts = options()
    with start(ws, RepoFacts(root=root, compose_file="docker-compose.yml"), opts) as handle:
        assert handle.service.status == "start_failed" and "Docker socket" in handle.service.detail
        assert leftovers(engine, opts) == []
    assert leftovers(engine, opts) == []


def test_cleanup_sweeps_what_a_killed_grader_left(engine):
    from portfolio_grader.runtime import cleanup

    opts = options()
    labels = {"portfolio-grader": "1", "portfolio-grader.run": opts.run_id}
    network = engine.networks.create(f"pg-{opts.run_id}-left", labels=labels)
    volume = engine.volumes.create(f"pg-{opts.run_id}-left", labels=labels)
    container = engine.containers.create("python:3.12-slim", ["sleep", "60"], labels=labels, name=f"pg-{opts.run_id}")
    removed = cleanup(opts.run_id)
    assert {f"container {container.name}", f"network {network.name}", f"volume {volume.name}"} <= set(removed)
    assert leftovers(engine, opts) == []


# An API that, like most learner projects, connects to its database once at start and exits when it is not up
# yet; a "database" that takes a few seconds to listen; no healthcheck, no restart policy.
_LATE_DB = "import socket, time; time.sleep(6); s = socket.create_server(('0.0.0.0', 5432)); [s.accept() for _ in iter(int, 1)]"
_API_NEEDS_DB = ("import socket, http.server, sys\n"
                 "try:\n    socket.create_connection(('db', 5432), 2).close()\n"
                 "except OSError as exc:\n"
                 "    sys.exit(f'sqlalchemy.exc.OperationalError: connection to server at db port 5432 failed: {exc}')\n"
                 "http.server.test(http.server.SimpleHTTPRequestHandler, port=8000, bind='0.0.0.0')\n")


def test_compose_api_that_exits_before_its_database_is_up_is_started_again_with_a_note(engine, tmp_path):
    ws, root = repo(
        tmp_path,
        {"docker-compose.yml": "services:\n  api:\n    build: .\n    ports: ['8000:8000']\n    depends_on: [db]\n"
                               "  db:\n    image: python:3.12-slim\n"
                               f"    command: [\"python\", \"-c\", \"{_LATE_DB}\"]\n",
         "Dockerfile": 'FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\nCMD ["python", "serve.py"]\n',
         "serve.py": _API_NEEDS_DB, "ping.txt": "pong"},
    )
    opts = options()
    facts = RepoFacts(root=root, compose_file="docker-compose.yml", manifest=Manifest(health="/ping.txt"))
    with start(ws, facts, opts) as handle:
        s = handle.service
        assert (s.kind, s.status) == ("compose", "running"), s.detail
        assert httpx.get(f"{s.base_url}/ping.txt", trust_env=False).text == "pong"
        note = next(n for n in handle.notes if "database was not accepting connections" in n)
        assert "exited" in note and "service_healthy" in note
    assert leftovers(engine, opts) == []


# An API whose schema someone must create by hand: GET /books answers 500 and logs sqlite's "no such table" until
# `python manage.py migrate` (a stand-in for Django's, in the image) has made the table in the app's folder.
_BOOKS_API = '''import http.server, sqlite3, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            rows = sqlite3.connect("app.db").execute("SELECT title FROM books").fetchall()
            status, body = 200, str(rows)
        except sqlite3.OperationalError as exc:
            print(f"sqlite3.OperationalError: {exc}", file=sys.stderr, flush=True)
            status, body = 500, "Internal Server Error"
        self.send_response(status); self.end_headers(); self.wfile.write(body.encode())
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
'''
_MANAGE = '''# manage.py: the project's Django-style entry point (a stand-in for django.core.management)
import sqlite3, sys
if sys.argv[1:2] == ["migrate"]:
    if "--fail" in open("migrate.flags").read():
        sys.exit("CommandError: Conflicting migrations detected")
    sqlite3.connect("app.db").execute("CREATE TABLE books (title TEXT)")
    print("Operations to perform:\\n  Apply all migrations: books\\nRunning migrations:\\n  Applying books.0001_initial... OK")
'''


def _migration_repo(tmp_path: Path, flags: str = "") -> tuple[Workspace, Path]:
    return repo(tmp_path, {"Dockerfile": 'FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\nCMD ["python", "serve.py"]\n',
                           "serve.py": _BOOKS_API, "manage.py": _MANAGE, "migrate.flags": flags})


def _reads(handle) -> Any:
    def reads() -> str:
        return f"GET /books {httpx.get(handle.service.base_url + '/books', trust_env=False).status_code}"
    return reads


def test_a_missing_schema_is_migrated_once_in_the_api_container_with_a_note(engine, tmp_path):
    from portfolio_grader.runtime.migrations import ensure_schema, last_stamp

    ws, root = _migration_repo(tmp_path)
    opts = options()
    with start(ws, RepoFacts(root=root, dockerfile="Dockerfile"), opts) as handle:
        assert handle.service.up, handle.service.detail
        done = ensure_schema(handle, [handle.api_context, root], _reads(handle), timeout=30)
        assert done is not None and done.table == "books" and done.command.command == "python manage.py migrate --noinput"
        assert (done.before, done.after, done.exit_code, done.fixed) == ("GET /books 500", "GET /books 200", 0, True)
        assert "Applying books.0001_initial... OK" in done.output and "Applying books" in done.note
        assert handle.read_only  # the table went into the app's writable folder, the root stayed read-only
        # once the schema is there, nothing more is run: the next look (at the log since) finds no missing table
        since = last_stamp(handle.api_log(timestamps=True))
        assert ensure_schema(handle, [root], _reads(handle), timeout=30, since=since) is None
    assert leftovers(engine, opts) == []


def test_a_migration_that_fails_is_reported_with_the_table_still_missing(engine, tmp_path):
    from portfolio_grader.runtime.migrations import ensure_schema

    ws, root = _migration_repo(tmp_path, flags="--fail")
    opts = options()
    with start(ws, RepoFacts(root=root, dockerfile="Dockerfile"), opts) as handle:
        done = ensure_schema(handle, [root], _reads(handle), timeout=30)
        assert (done.exit_code, done.fixed, done.after) == (1, False, "GET /books 500")
        assert "no such table: books" in done.still and "Conflicting migrations" in done.note
        # the manifest's setup: is the explicit way: nothing is run, the note says so
        given = ensure_schema(handle, [root], _reads(handle), timeout=30, setup_given=True)
        assert given.command is None and "runs no migrations of its own" in given.note
    assert leftovers(engine, opts) == []


# An API whose README says to call `GET /createdb` once: until then GET /books answers 500 and logs sqlite's "no
# such table"; the repository has no migration command. The grader sends the call itself, once, then reads again.
_CREATEDB_API = '''import http.server, sqlite3, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        db = sqlite3.connect("shelf.db")
        try:
            if self.path == "/createdb":
                db.execute("CREATE TABLE IF NOT EXISTS books (title TEXT)"); db.commit()
                status, body = 200, '{"message": "Database populated."}'
            else:
                status, body = 200, str(db.execute("SELECT title FROM books").fetchall())
        except sqlite3.OperationalError as exc:
            print(f"sqlite3.OperationalError: {exc}", file=sys.stderr, flush=True)
            status, body = 500, "Internal Server Error"
        self.send_response(status); self.end_headers(); self.wfile.write(body.encode())
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
'''


def test_with_no_migration_command_the_apis_createdb_is_sent_once_and_the_tables_come(engine, tmp_path):
    from portfolio_grader.runtime.migrations import ensure_schema

    ws, root = repo(tmp_path, {"Dockerfile": 'FROM python:3.12-slim\nWORKDIR /app\nCOPY serve.py .\n'
                                             'CMD ["python", "serve.py"]\n', "serve.py": _CREATEDB_API})
    opts = options()
    sent: list[str] = []

    def send(label: str) -> str:
        sent.append(label)
        method, path = label.split(" ", 1)
        return str(httpx.request(method, handle.service.base_url + path, trust_env=False).status_code)

    with start(ws, RepoFacts(root=root, dockerfile="Dockerfile"), opts) as handle:
        assert handle.service.up, handle.service.detail
        done = ensure_schema(handle, [handle.api_context, root], _reads(handle), timeout=30,
                             held_out=["DELETE /books", "GET /createdb"], send=send)
        assert done is not None and done.table == "books" and done.command is None
        assert (sent, done.answer, done.before, done.after, done.fixed) == (
            ["GET /createdb"], "200", "GET /books 500", "GET /books 200", True)
        assert "the API documents `GET /createdb`" in done.note and "- request: GET /createdb" in done.note
    assert leftovers(engine, opts) == []


# ---------------------------------------------------------------- the `.env` a README spells out
# A stack whose compose file reads `.env` (not committed) for the API's env_file and for ${DB_USER} in the database
# service; `.env.example` holds placeholders (DB_HOST=changeme), the README the values a new user is told to write,
# one of them built from the others. The "database" answers each connection with the credentials it was given;
# the API exits unless they are the ones it holds and its DATABASE_URL is spelled out, as a real client would fail.
_DB_STUB = ("import os, socketserver; socketserver.TCPServer.allow_reuse_address = True; "
            "H = type('H', (socketserver.BaseRequestHandler,), {'handle': lambda self: self.request.sendall("
            "(os.environ['POSTGRES_USER'] + ':' + os.environ['POSTGRES_PASSWORD']).encode())}); "
            "socketserver.TCPServer(('0.0.0.0', 5432), H).serve_forever()")
_API_CHECKS_ITS_DB = '''import http.server, json, os, socket, sys, time
env = {k: os.environ.get(k, "") for k in ("DB_HOST", "DB_USER", "DB_PASSWORD", "DATABASE_URL")}
for _ in range(60):
    try:
        given = socket.create_connection((env["DB_HOST"], 5432), 2).recv(200).decode()
        break
    except OSError as exc:
        print(f"database {env['DB_HOST']!r} not reachable: {exc}", flush=True)
        time.sleep(0.5)
else:
    sys.exit(1)
wanted = f"postgresql://{env['DB_USER']}:{env['DB_PASSWORD']}@{env['DB_HOST']}:5432/shelf"
if given != f"{env['DB_USER']}:{env['DB_PASSWORD']}" or env["DATABASE_URL"] != wanted:
    sys.exit(f"password authentication failed: database has {given!r}, DATABASE_URL is {env['DATABASE_URL']!r}")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
        self.wfile.write(json.dumps(env).encode())
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
'''
_SHELF_README = """# Shelf API

Copy `.env.example` to a `.env` file beside `docker-compose.yml` and set it like this:

```env
DB_HOST=db
DB_USER=shelf
DB_PASSWORD=shelf-pass
DATABASE_URL=postgresql://${DB_USER}:${DB_PASSWORD}@${DB_HOST}:5432/shelf
```

Then `docker compose up --build` and open http://localhost:8000/.
"""


def test_an_uncommitted_env_is_made_of_the_readme_block_over_the_example_for_every_service(engine, tmp_path):
    ws, root = repo(
        tmp_path,
        {"docker-compose.yml": "services:\n  api:\n    build: .\n    ports: ['8000:8000']\n    env_file: .env\n"
                               "    depends_on: [db]\n"
                               "  db:\n    image: python:3.12-slim\n    environment:\n"
                               "      POSTGRES_USER: ${DB_USER}\n      POSTGRES_PASSWORD: ${DB_PASSWORD}\n"
                               f"    command: [\"python\", \"-c\", \"{_DB_STUB}\"]\n",
         "Dockerfile": 'FROM python:3.12-slim\nWORKDIR /app\nCOPY serve.py .\nCMD ["python", "serve.py"]\n',
         "serve.py": _API_CHECKS_ITS_DB, ".env.example": "DB_HOST=changeme\nDB_USER=changeme\nDB_PASSWORD=\n",
         "README.md": _SHELF_README, ".gitignore": ".env\n"},
    )
    opts = options()
    with start(ws, RepoFacts(root=root, compose_file="docker-compose.yml"), opts) as handle:
        s = handle.service
        assert (s.kind, s.status) == ("compose", "running"), s.detail
        seen = httpx.get(f"{s.base_url}/", trust_env=False).json()
        assert seen == {"DB_HOST": "db", "DB_USER": "shelf", "DB_PASSWORD": "shelf-pass",
                        "DATABASE_URL": "postgresql://shelf:shelf-pass@db:5432/shelf"}, seen
        [note] = [n for n in handle.notes if "in place of the uncommitted .env" in n]
        assert "the .env block of README.md (line 6), over .env.example" in note and "shelf-pass" not in note
    assert leftovers(engine, opts) == []


# ---------------------------------------------------------------- a crash under a file watcher
# The app fails at import and its file watcher (here a stand-in for `uvicorn --reload`: the watcher's line, the
# worker's traceback, then waiting) keeps the container running: the wait ends once the log stays quiet, not at the
# start deadline, and the scorecard says what happened and the traceback.
_WATCHED_CRASH = ('CMD ["sh", "-c", "echo \'INFO:     Started reloader process [1] using StatReload\'; '
                  'python -c \'import os; engine = os.environ[\\"DATABASE_URL\\"]\'; exec sleep 600"]\n')


@pytest.mark.parametrize("compose", [False, True], ids=["container", "compose"])
def test_an_app_that_crashed_under_its_file_watcher_is_not_waited_for_to_the_deadline(engine, tmp_path, compose):
    import time

    files = {"Dockerfile": f"FROM python:3.12-slim\nEXPOSE 8000\n{_WATCHED_CRASH}"}
    if compose:
        files["docker-compose.yml"] = "services:\n  api:\n    build: .\n    ports: ['8000:8000']\n"
    ws, root = repo(tmp_path, files)
    facts = (RepoFacts(root=root, compose_file="docker-compose.yml") if compose
             else RepoFacts(root=root, dockerfile="Dockerfile", exposed_ports=[8000]))
    opts = options(start_timeout=90)
    started = time.monotonic()
    with start(ws, facts, opts) as handle:
        waited = time.monotonic() - started
        s = handle.service
        assert s.status == "container_crashed", s.detail
        assert "file watcher keeps the container running" in s.detail and "Started reloader process" in s.detail
        assert "KeyError: 'DATABASE_URL'" in s.detail or "DATABASE_URL is not set" in s.detail, s.detail
        assert waited < 60, waited  # quiet for 15 s after the crash, not the 90 s deadline
    assert leftovers(engine, opts) == []


# ---------------------------------------------------------------- samples: what the scorecard says the grader did
# expected.yaml's `notes_include` (texts each found in one scorecard note) and `criteria_evaluated` (criteria whose
# checks must have run, whatever their verdict). `graded` is conftest.py's session fixture: one build per sample
# per run, shared with test_samples.py.

_NOTED = [n for n in SAMPLE_NAMES if {"notes_include", "criteria_evaluated"} & set(
    (__import__("yaml").safe_load((SAMPLES / n / "expected.yaml").read_text()) or {}))]


@pytest.mark.parametrize("name", _NOTED)
def test_sample_notes_say_what_the_grader_did(graded, name):
    import yaml

    expected = yaml.safe_load((SAMPLES / name / "expected.yaml").read_text())
    _, card, _ = graded(name)
    for text in expected.get("notes_include", []):
        assert any(text in note for note in card.notes), f"{name}: no note says {text!r}; notes: {card.notes}"
    statuses = {c.id: c.status for c in card.criteria}
    for criterion in expected.get("criteria_evaluated", []):
        assert statuses.get(criterion) not in (None, "not_evaluated"), f"{name}: {criterion} {statuses}"


# ---------------------------------------------------------------- writes the read-only root refuses after start
# A FastAPI item store that comes up on a read-only root (its health answer needs no disk) and writes outside its
# folder and /tmp only when used: the grade finds the refused writes in its log, starts it again writable once,
# and grades it over from the start. `READS` fail at the first read (a SQLite file under /srv/data), `WRITES` only
# on create (an audit line under /srv/audit), seen after the checks.
_ITEMS_API = '''import json, os, sqlite3
from typing import Annotated
from fastapi import FastAPI, HTTPException, Path, Response
from pydantic import BaseModel, Field
app = FastAPI(title="Items")
STORE = os.environ["ITEMS_STORE"]
class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    qty: int = Field(ge=0, le=1000)
class Item(ItemIn):
    id: int
ItemId = Annotated[int, Path(ge=1, le=2**31)]
def db():
    conn = sqlite3.connect(os.path.join(STORE, "items.db") if STORE == "/srv/data" else ":memory:",
                           check_same_thread=False)
    conn.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER)")
    return conn
MEMORY = db() if STORE != "/srv/data" else None
def conn():
    return MEMORY or db()
@app.get("/health")
def health():
    return {"ok": True}
@app.get("/items", response_model=list[Item])
def items():
    return [Item(id=i, name=n, qty=q) for i, n, q in conn().execute("SELECT id, name, qty FROM items")]
@app.post("/items", response_model=Item, status_code=201)
def create(body: ItemIn):
    if STORE == "/srv/audit":
        with open("/srv/audit/created.log", "a") as log:
            log.write(json.dumps(body.model_dump()) + "\\\\n")
    c = conn(); cur = c.execute("INSERT INTO items (name, qty) VALUES (?, ?)", (body.name, body.qty)); c.commit()
    return Item(id=cur.lastrowid, **body.model_dump())
@app.get("/items/{item_id}", response_model=Item, responses={404: {"description": "no such item"}})
def read(item_id: ItemId):
    row = conn().execute("SELECT id, name, qty FROM items WHERE id = ?", (item_id,)).fetchone()
    if row is None:
        raise HTTPException(404, "no such item")
    return Item(id=row[0], name=row[1], qty=row[2])
@app.put("/items/{item_id}", response_model=Item, responses={404: {"description": "no such item"}})
def update(item_id: ItemId, body: ItemIn):
    read(item_id)
    c = conn(); c.execute("UPDATE items SET name = ?, qty = ? WHERE id = ?", (body.name, body.qty, item_id)); c.commit()
    return Item(id=item_id, **body.model_dump())
@app.delete("/items/{item_id}", status_code=204, responses={404: {"description": "no such item"}})
def delete(item_id: ItemId):
    read(item_id)
    c = conn(); c.execute("DELETE FROM items WHERE id = ?", (item_id,)); c.commit()
    return Response(status_code=204)
'''


def _items_repo(tmp_path: Path, store: str, compose: bool) -> Path:
    files = {"main.py": _ITEMS_API, "requirements.txt": "fastapi\nuvicorn\n",
             "Dockerfile": ("FROM python:3.12-slim\nWORKDIR /app\nCOPY requirements.txt .\n"
                            "RUN pip install --no-cache-dir -r requirements.txt\nCOPY main.py .\n"
                            f"RUN mkdir -p {store}\nENV ITEMS_STORE={store}\nEXPOSE 8000\n"
                            'CMD ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]\n')}
    if compose:
        files["docker-compose.yml"] = "services:\n  api:\n    build: .\n    ports: ['8000:8000']\n"
    return repo(tmp_path, files)[1]


def _grade_items(engine, root: Path):
    from portfolio_grader.checks import Settings
    from portfolio_grader.pipeline import GradeRequest, grade

    run_id = f"t{uuid.uuid4().hex[:10]}"
    card = grade(GradeRequest(source=str(root), tier="beginner", run_id=run_id,
                              settings=Settings(max_examples=5, contract_time_budget=20)))
    assert leftovers(engine, options().__class__(run_id=run_id)) == []
    return card, {c.id: c.status for c in card.criteria}, [s.name for s in card.stages]


def test_a_write_refused_at_the_first_reads_restarts_the_api_writable_before_any_check(engine, tmp_path):
    card, criteria, stages = _grade_items(engine, _items_repo(tmp_path, "/srv/data", compose=False))
    [note] = [n for n in card.notes if "wrote to the read-only root filesystem" in n]
    assert "after the grader's first reads and writes, before any check" in note, note
    assert "unable to open database file" in note and "started again on a writable root and graded" in note
    # graded over from the start: discovery ran twice, the checks stage began twice (the first ended at the restart,
    # before any check ran), and the app was judged on its merits
    assert stages.count("discover") == 2 and stages.count("checks") == 2, stages
    assert criteria["crud-lifecycle"] == "pass" and criteria["no-server-errors"] == "pass", (criteria, card.notes)


def test_a_write_refused_during_the_checks_grades_the_stack_again_writable(engine, tmp_path):
    card, criteria, stages = _grade_items(engine, _items_repo(tmp_path, "/srv/audit", compose=True))
    [note] = [n for n in card.notes if "wrote to the read-only root filesystem" in n]
    assert note.startswith("the API service 'api' wrote to the read-only root filesystem during the checks"), note
    assert "Read-only file system" in note
    assert stages.count("checks") == 2, stages  # the first run's verdicts were set aside
    assert criteria["crud-lifecycle"] == "pass" and criteria["no-server-errors"] == "pass", (criteria, card.notes)
    assert not any(f.kind == "server_error" for f in card.findings), [f.message for f in card.findings]


# ---------------------------------------------------------------- the API's own init operation, through the grade
# A FastAPI book list on SQLite whose table exists only after `GET /createdb` (its README's first step, VAmPI's
# shape), with no migration tool in the layout: the grade sends the held-out init once, before any test user.
_CREATEDB_FASTAPI = '''import sqlite3
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
app = FastAPI(title="Books")
DB = "/tmp/books.db"
class BookIn(BaseModel):
    title: str = Field(min_length=1, max_length=80)
def conn():
    return sqlite3.connect(DB)
@app.get("/createdb")
def createdb():
    c = conn(); c.execute("DROP TABLE IF EXISTS books"); c.execute("CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT)"); c.commit()
    return {"message": "database reset"}
@app.get("/books")
def books():
    try:
        return [{"id": i, "title": t} for i, t in conn().execute("SELECT id, title FROM books")]
    except sqlite3.OperationalError as exc:
        print(f"sqlite3.OperationalError: {exc}", flush=True)
        raise HTTPException(500, "database error")
'''


def test_the_apis_own_init_operation_is_sent_once_by_the_grade(engine, tmp_path):
    from portfolio_grader.checks import Settings
    from portfolio_grader.pipeline import GradeRequest, grade

    root = repo(tmp_path, {"main.py": _CREATEDB_FASTAPI, "requirements.txt": "fastapi\nuvicorn\n",
                           "Dockerfile": ("FROM python:3.12-slim\nWORKDIR /app\nCOPY requirements.txt .\n"
                                          "RUN pip install --no-cache-dir -r requirements.txt\nCOPY main.py .\n"
                                          'CMD ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]\n')})[1]
    run_id = f"t{uuid.uuid4().hex[:10]}"
    card = grade(GradeRequest(source=str(root), tier="beginner", run_id=run_id,
                              settings=Settings(max_examples=3, contract_time_budget=15)))
    assert leftovers(engine, options().__class__(run_id=run_id)) == []
    schema = next((n for n in card.notes if "the API documents `GET /createdb`" in n), card.notes)
    assert "before any test user existed" in schema and "the tables were there afterwards" in schema, schema
    assert not any("`GET /createdb` was never called" in n for n in card.notes), card.notes
    assert not any(f.kind == "server_error" and f.operation == "GET /books" for f in card.findings)
