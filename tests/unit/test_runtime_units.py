"""Runtime stage without Docker: compose rewriting, API-service choice, ports, build-log reading, detection."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from portfolio_grader.models import Manifest, RepoFacts, Source, Workspace
from portfolio_grader.runtime import RuntimeOptions, RuntimeUnavailable, start, tail_log
from portfolio_grader.runtime import builders as b
from portfolio_grader.runtime import compose as c
from portfolio_grader.runtime import compose_file as cf
from portfolio_grader.runtime import compose_rewrite as cr
from portfolio_grader.runtime import compose_tool as ct
from portfolio_grader.runtime import docker as d
from portfolio_grader.runtime import sandbox
from portfolio_grader.runtime.diagnose import diagnose, waiting_for_a_change
from portfolio_grader.runtime.external import normalise_url, run_external

OPTS = RuntimeOptions(run_id="run42", memory="512m", cpus=0.5, pids=128)
LABELS = {"portfolio-grader": "1", "portfolio-grader.run": "run42"}


# ---------------------------------------------------------------- helpers


def plan_for(tmp_path: Path, compose: str | dict, *, files: dict[str, str] | None = None, manifest: Manifest | None = None, compose_name: str = "docker-compose.yml", options: RuntimeOptions = OPTS) -> cr.ComposePlan:
    text = compose if isinstance(compose, str) else yaml.safe_dump(compose)
    for name, body in {compose_name: text, **(files or {})}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    ws = Workspace(name="Task API", source=Source(repo=str(tmp_path)), path=tmp_path)
    facts = RepoFacts(root=tmp_path, compose_file=compose_name, manifest=manifest)
    return c.prepare(ws, facts, options)


def svc(plan: cr.ComposePlan, name: str) -> dict:
    assert plan.refusal is None, plan.refusal
    return plan.doc["services"][name]


# ---------------------------------------------------------------- small helpers


def test_tail_log_keeps_the_end_and_says_when_cut():
    text = "\n".join(f"line {i}" for i in range(500))
    tail = tail_log("api", text)
    assert tail.truncated and tail.text.splitlines()[-1] == "line 499" and len(tail.text.splitlines()) == 200
    short = tail_log("api", "one\ntwo")
    assert not short.truncated and short.text == "one\ntwo"
    big = tail_log("build", "x" * 50_000)
    assert big.truncated and len(big.text.encode()) <= 20_000


def test_image_tag_is_lowercase_and_valid():
    assert b.image_tag("Task API!", "Run_1") == "portfolio-grader/task-api:Run_1"
    assert b.image_tag("", "r1") == "portfolio-grader/submission:r1"
    assert b.image_tag("My__Repo..x", "r1", service="Web App") == "portfolio-grader/my-repo-x-web-app:r1"


# ---------------------------------------------------------------- builder detection


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Docker version 20.10.24+dfsg1, build 297e128", (20, 10)),
        ("Docker version 28.2.2, build e6534b4", (28, 2)),
        ("Docker version 24.0.7-rd, build 72ffacf", (24, 0)),
        ("garbage", None),
    ],
)
def test_parse_docker_version(text, expected):
    assert b.parse_docker_version(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Docker Compose version v2.24.6", (2, "2.24.6")),
        ("Docker Compose version 2.29.1-desktop.1", (2, "2.29.1")),
        ("docker-compose version 1.29.2, build unknown\ndocker-py version: 5.0.3", (1, "1.29.2")),
        ("nope", None),
    ],
)
def test_parse_compose_version(text, expected):
    assert b.parse_compose_version(text) == expected


def test_choose_builder_prefers_buildx_then_old_cli_then_sdk():
    new_no_buildx = b.CliProbe("/usr/local/bin/docker", (28, 2))
    old = b.CliProbe("/usr/bin/docker", (20, 10))
    new_buildx = b.CliProbe("/opt/docker", (27, 1), has_buildx=True)
    # this machine: a 28.x client without buildx first on PATH, Debian's 20.10 client elsewhere
    chosen = b.choose_builder([new_no_buildx, old])
    assert (chosen.kind, chosen.name, chosen.cli) == ("cli", "docker CLI 20.10 (BuildKit)", "/usr/bin/docker")
    assert b.choose_builder([old, new_buildx]).name == "docker buildx (BuildKit)"
    assert b.choose_builder([new_no_buildx]).name == "docker SDK (classic builder, no BuildKit)"
    assert b.choose_builder([b.CliProbe("/x/docker", None)]).kind == "sdk"
    assert b.choose_builder([]).buildkit is False


def test_build_commands_for_buildx_and_old_cli(tmp_path):
    req = b.BuildRequest(
        context=tmp_path, dockerfile=tmp_path / "Dockerfile", tag="portfolio-grader/x:r1", labels=LABELS,
        build_args={"PY": "3.12"}, target="prod",
    )
    buildx = b.build_cli_command(b.Builder("buildx", "docker buildx (BuildKit)", "/usr/bin/docker"), req)
    assert buildx[:4] == ["/usr/bin/docker", "buildx", "build", "--load"]
    assert "--progress=plain" in buildx and buildx[-1] == str(tmp_path)
    assert flag_values(buildx, "--label") == ["portfolio-grader=1", "portfolio-grader.run=run42"]
    assert flag_values(buildx, "--build-arg") == ["PY=3.12"] and flag_values(buildx, "--target") == ["prod"]
    cmd, env = b._cli_command(b.Builder("cli", "docker CLI 20.10 (BuildKit)", "/usr/bin/docker"), req, req.dockerfile)
    assert cmd[:2] == ["/usr/bin/docker", "build"] and env["DOCKER_BUILDKIT"] == "1"
    assert flag_values(cmd, "-t") == ["portfolio-grader/x:r1"] and flag_values(cmd, "-f") == [str(tmp_path / "Dockerfile")]


def flag_values(cmd: list[str], flag: str) -> list[str]:
    return [cmd[i + 1] for i, arg in enumerate(cmd[:-1]) if arg == flag]


def test_engine_env_points_the_cli_at_the_sdk_engine(monkeypatch):
    env = b.engine_env({"PATH": "/bin", "DOCKER_CONTEXT": "desktop-linux"})
    assert env["DOCKER_HOST"] == "unix:///var/run/docker.sock" and "DOCKER_CONTEXT" not in env
    assert b.engine_env({"DOCKER_HOST": "tcp://10.0.0.5:2376"})["DOCKER_HOST"] == "tcp://10.0.0.5:2376"


def test_run_command_kills_on_timeout():
    result = b.run_command(["sh", "-c", "echo started; sleep 30"], timeout=0.5)
    assert result.timed_out and result.returncode is None and "started" in result.output
    assert result.seconds < 10
    assert b.run_command(["sh", "-c", "echo hi; exit 3"], timeout=10).returncode == 3
    missing = b.run_command(["/nonexistent/docker", "version"], timeout=5)
    assert missing.error and not missing.ok


# ---------------------------------------------------------------- Dockerfile facts


def test_dockerfile_facts():
    text = (
        "# syntax=docker/dockerfile:1\nFROM python:3.12-slim AS base\nEXPOSE 8000/tcp 9000\nEXPOSE $PORT\n"
        "RUN --mount=type=cache,target=/root/.cache \\\n    pip install -r requirements.txt\n"
    )
    assert b.dockerfile_exposed_ports(text) == [8000, 9000]
    assert b.dockerfile_uses_mount(text)
    assert not b.dockerfile_uses_mount("FROM x\nRUN echo --mount=nothing-here\n".replace("RUN", "# RUN"))


def test_choose_context_follows_copy_sources(tmp_path):
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "requirements.txt").write_text("fastapi\n")
    (tmp_path / "backend" / "Dockerfile").write_text("FROM python:3.12\nCOPY requirements.txt .\nCOPY . .\n")
    assert b.choose_context(tmp_path, tmp_path / "backend" / "Dockerfile") == tmp_path / "backend"
    (tmp_path / "docker").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "docker" / "Dockerfile").write_text("FROM python:3.12\nCOPY src/ ./src\n")
    assert b.choose_context(tmp_path, tmp_path / "docker" / "Dockerfile") == tmp_path
    (tmp_path / "Dockerfile").write_text("FROM python:3.12\n")
    assert b.choose_context(tmp_path, tmp_path / "Dockerfile") == tmp_path


# ---------------------------------------------------------------- build failures

BUILDKIT_2010_RUN = """#8 [stage-0 4/4] RUN --mount=type=cache,target=/root/.cache pip install -r requirement.txt
#8 0.443 ERROR: Could not open requirements file: [Errno 2] No such file or directory: 'requirement.txt'
#8 ERROR: executor failed running [/bin/sh -c pip install -r requirement.txt]: exit code: 1
------
 > [stage-0 4/4] RUN --mount=type=cache,target=/root/.cache pip install -r requirement.txt:
#8 0.443 ERROR: Could not open requirements file: [Errno 2] No such file or directory: 'requirement.txt'
------
executor failed running [/bin/sh -c pip install -r requirement.txt]: exit code: 1
"""

BUILDX_MULTISTAGE = """#12 [builder 3/5] RUN npm ci
#12 2.101 npm ERR! code ENOENT
#12 ERROR: process "/bin/sh -c npm ci" did not complete successfully: exit code: 254
------
 > [builder 3/5] RUN npm ci:
2.101 npm ERR! code ENOENT
------
Dockerfile:5
--------------------
   4 |     COPY package.json ./
   5 | >>> RUN npm ci
--------------------
ERROR: failed to solve: process "/bin/sh -c npm ci" did not complete successfully: exit code: 254
"""

BUILDKIT_COPY = """#6 [2/2] COPY requirement.txt .
#6 ERROR: "/requirement.txt" not found: not found
------
 > [2/2] COPY requirement.txt .:
------
failed to compute cache key: "/requirement.txt" not found: not found
"""

BUILDKIT_BASE = """#3 [internal] load metadata for docker.io/library/python:3.99-nope
#3 ERROR: failed to do request: Head "https://registry-1.docker.io/v2/library/python/manifests/3.99-nope": dial tcp: lookup registry-1.docker.io: no such host
------
 > [internal] load metadata for docker.io/library/python:3.99-nope:
------
failed to solve with frontend dockerfile.v0: failed to create LLB definition: failed to do request: Head "https://registry-1.docker.io/v2/library/python/manifests/3.99-nope": dial tcp: lookup registry-1.docker.io: no such host
"""

CLASSIC_RUN = (
    "Step 1/2 : FROM python:3.12-slim\n ---> 2bf4cbd7660e\nStep 2/2 : RUN echo a && exit 7\n ---> Running in 9fda5b0a0f37\n"
    "a\nRemoving intermediate container 9fda5b0a0f37\nThe command '/bin/sh -c echo a && exit 7' returned a non-zero code: 7\n"
)
CLASSIC_BASE = (
    'Step 1/2 : FROM python:3.99-nope\nGet "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io'
    " on 10.255.255.53:53: no such host\n"
)
CLASSIC_MOUNT = (
    "Step 3/5 : RUN --mount=type=cache,target=/x pip install x\nthe --mount option requires BuildKit. Refer to "
    "https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled\n"
)


# what real projects' failed steps print (seen on learner repos: psycopg2 built from source without libpq's headers,
# `npm install -g npm@latest` on an old node, a typo in an apt package, a pin no index has)
BUILDKIT_PSYCOPG = """#9 [5/5] RUN pip install -r requirements.txt
#9 9.790       error: subprocess-exited-with-error
#9 9.790       In file included from psycopg/adapter_asis.c:28:
#9 9.790       ./psycopg/psycopg.h:36:10: fatal error: libpq-fe.h: No such file or directory
#9 9.790       compilation terminated.
#9 9.790       error: command '/usr/bin/x86_64-linux-gnu-gcc' failed with exit code 1
#9 9.793 error: legacy-install-failure
#9 ERROR: executor failed running [/bin/sh -c pip install -r requirements.txt]: exit code: 1
------
 > [5/5] RUN pip install -r requirements.txt:
------
"""
BUILDKIT_NPM_ENGINE = """#6 [3/6] RUN npm install i npm@latest -g
#6 3.752 npm ERR! code EBADENGINE
#6 3.760 npm ERR! engine Unsupported engine
#6 3.764 npm ERR! engine Not compatible with your version of node/npm: npm@12.2.3
#6 3.771 npm ERR! notsup Not compatible with your version of node/npm: npm@12.2.3
#6 3.789 npm ERR!     /root/.npm/_logs/2026-12-06T21_35_08_625Z-debug-0.log
#6 ERROR: executor failed running [/bin/sh -c npm install i npm@latest -g]: exit code: 1
------
 > [3/6] RUN npm install i npm@latest -g:
------
"""
BUILDX_APT = """#5 [2/4] RUN apt-get update && apt-get install -y libpq-devel
#5 1.200 Reading package lists...
#5 1.900 E: Unable to locate package libpq-devel
#5 ERROR: process "/bin/sh -c apt-get update && apt-get install -y libpq-devel" did not complete successfully: exit code: 100
------
 > [2/4] RUN apt-get update && apt-get install -y libpq-devel:
------
"""
CLASSIC_PIN = (
    "Step 3/4 : RUN pip install -r requirements.txt\n ---> Running in 1a2b3c\nCollecting fastapi==0.0.999\n"
    "ERROR: Could not find a version that satisfies the requirement fastapi==0.0.999 (from versions: 0.1.0)\n"
    "ERROR: No matching distribution found for fastapi==0.0.999\n"
    "The command '/bin/sh -c pip install -r requirements.txt' returned a non-zero code: 1\n"
)


@pytest.mark.parametrize("log, why", [
    (BUILDKIT_PSYCOPG, "fatal error: libpq-fe.h: No such file or directory"),
    (BUILDKIT_NPM_ENGINE, "npm ERR! notsup Not compatible with your version of node/npm: npm@12.2.3"),
    (BUILDX_APT, "E: Unable to locate package libpq-devel"),
    (CLASSIC_PIN, "ERROR: Could not find a version that satisfies the requirement fastapi==0.0.999 (from versions: 0.1.0)"),
    (BUILDX_MULTISTAGE, None),  # `npm ERR! code ENOENT` alone says nothing the exit code does not
    (CLASSIC_RUN, None),
])
def test_a_failed_step_is_said_with_the_line_of_its_output_that_says_why(log, why):
    step, code = b.failing_step(log)
    sentence = b.describe_build_failure(log)
    assert sentence.startswith(f"the image did not build: step '{step}' failed (exit {code})"), sentence
    assert sentence.endswith(f": {why}" if why else f"(exit {code})"), sentence


def test_failing_step_from_buildkit_and_classic_logs():
    assert b.failing_step(BUILDKIT_2010_RUN) == ("RUN pip install -r requirement.txt", 1)
    assert b.failing_step(BUILDX_MULTISTAGE) == ("RUN npm ci (stage builder)", 254)
    assert b.failing_step(CLASSIC_RUN) == ("RUN echo a && exit 7", 7)
    assert b.failing_step("") == (None, None)


def test_describe_build_failure_sentences():
    assert (
        b.describe_build_failure(BUILDKIT_2010_RUN)
        == "the image did not build: step 'RUN pip install -r requirement.txt' failed (exit 1): ERROR: Could not open "
        "requirements file: [Errno 2] No such file or directory: 'requirement.txt'"
    )
    assert "step 'RUN npm ci (stage builder)' failed (exit 254)" in b.describe_build_failure(BUILDX_MULTISTAGE)
    copy = b.describe_build_failure(BUILDKIT_COPY)
    assert "COPY requirement.txt ." in copy and "not in the build context" in copy
    assert "base image 'python:3.99-nope'" in b.describe_build_failure(BUILDKIT_BASE)
    assert "base image 'python:3.99-nope'" in b.describe_build_failure(CLASSIC_BASE)
    assert "step 'RUN echo a && exit 7' failed (exit 7)" in b.describe_build_failure(CLASSIC_RUN)
    parse = b.describe_build_failure('Bad Request ("dockerfile parse error line 2: unknown instruction: RUNN")')
    assert "syntax error" in parse and "line 2" in parse
    sdk = b.Builder("sdk", b.SDK_BUILDER)
    mount = b.describe_build_failure(CLASSIC_MOUNT, builder=sdk, uses_mount=True)
    assert "needs BuildKit" in mount and mount.count("BuildKit") <= 3 and "buildx" in mount
    other = b.describe_build_failure(CLASSIC_RUN, builder=sdk, uses_mount=True)
    assert "failed (exit 7)" in other and "RUN --mount=" in other
    timeout = b.describe_build_failure("#5 [2/2] RUN sleep 60\n", timed_out=True, timeout=900)
    assert "did not build within 900 s" in timeout and "stopped" in timeout


def test_frontend_unreachable_triggers_the_offline_retry():
    log = (
        "#3 resolve image config for docker.io/docker/dockerfile:1\n#3 ERROR: failed to do request: Head "
        '"https://registry-1.docker.io/v2/docker/dockerfile/manifests/1": dial tcp: lookup registry-1.docker.io: no such host\n'
    )
    assert b._frontend_unreachable(log)
    assert not b._frontend_unreachable(BUILDKIT_2010_RUN)


# ---------------------------------------------------------------- ports and readiness (docker.py)


def test_candidate_ports():
    assert d.candidate_ports(9000, [8000]) == [9000]
    assert d.candidate_ports(None, [8000, 5000]) == [8000, 5000, 8080, 3000, 80]
    assert d.candidate_ports(None, []) == [8000, 8080, 3000, 5000, 80]
    assert d.candidate_ports(None, [3001, 3001, "x"]) == [3001, 8000, 8080, 3000, 5000, 80]
    assert d.port_env_value(None, []) == 8000 and d.port_env_value(None, [3000]) == 3000 and d.port_env_value(5, [3000]) == 5


def test_host_ports_from_attrs_reads_loopback_tcp_bindings():
    attrs = {
        "NetworkSettings": {
            "Ports": {
                "8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}],
                "8080/tcp": None,
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "49154"}],
            }
        }
    }
    assert d.host_ports_from_attrs(attrs) == {8000: 49153}
    assert d.host_ports_from_attrs({}) == {}


def test_connect_engine_raises_one_actionable_line(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    with pytest.raises(RuntimeUnavailable) as info:
        d.connect_engine()
    message = str(info.value)
    assert "\n" not in message and f"unix://{tmp_path}/no.sock" in message and "DOCKER_HOST" in message


# ---------------------------------------------------------------- compose: ports


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (8000, (8000, "tcp", None)),
        ("3000", (3000, "tcp", None)),
        ("8080:8000", (8000, "tcp", None)),
        ("8000:8000/tcp", (8000, "tcp", None)),
        ("0.0.0.0:80:80/udp", (80, "udp", None)),
        ("127.0.0.1:5432:5432", (5432, "tcp", None)),
        ("[::1]:8080:80", (80, "tcp", None)),
        ({"target": 8000, "published": 80, "host_ip": "0.0.0.0", "protocol": "tcp", "mode": "host"}, (8000, "tcp", None)),
    ],
)
def test_parse_port_entry(entry, expected):
    assert cr.parse_port_entry(entry) == expected


def test_port_ranges_are_dropped_with_a_note():
    port, _, note = cr.parse_port_entry("8000-8005:8000-8005")
    assert port is None and "range" in note


def test_ports_short_and_long_syntax_become_loopback_random(tmp_path):
    plan = plan_for(
        tmp_path,
        {
            "services": {
                "api": {
                    "build": ".",
                    "ports": ["8000:8000", "0.0.0.0:9000:9000/tcp", {"target": 7000, "published": 7000}, "5353:53/udp",
                              "8100-8101:8100-8101"],
                }
            }
        },
        files={"Dockerfile": "FROM python:3.12\n"},
    )
    assert svc(plan, "api")["ports"] == ["127.0.0.1::8000", "127.0.0.1::9000", "127.0.0.1::7000", "127.0.0.1::53/udp"]
    assert any("range" in n for n in plan.notes)
    assert plan.api_ports == [8000, 9000, 7000]


def test_yaml_sexagesimal_ports_stay_strings(tmp_path):
    plan = plan_for(tmp_path, "services:\n  web:\n    image: nginx\n    ports:\n      - 22:22\n      - 80:80\n")
    assert svc(plan, "web")["ports"] == ["127.0.0.1::22", "127.0.0.1::80"]


# ---------------------------------------------------------------- compose: rewriting


COMPOSE_API_DB = """
version: "3.8"
x-common: &common
  restart: unless-stopped
services:
  api:
    <<: *common
    build:
      context: ./api
      dockerfile: Dockerfile.prod
      args:
        APP_ENV: production
      target: runtime
    image: taskapi:latest
    container_name: task_api
    ports: ["8000:8000"]
    environment:
      DATABASE_URL: postgresql://app:${DB_PASSWORD:-secret}@db:5432/app
      DEBUG: "true"
    env_file: .env
    depends_on: [db]
    volumes: ["./api/src:/app/src"]
    mem_limit: 8g
    cpu_quota: 50000
  worker:
    image: taskapi:latest
    command: celery -A app worker
  db:
    image: postgres:16
    container_name: task_db
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD}
    volumes:
      - pgdata:/var/lib/postgresql/data
    ports: ["5432:5432"]
    logging: {driver: none}
volumes:
  pgdata:
    name: fixed_pgdata
networks:
  backend: {}
"""


def test_rewrite_build_becomes_our_image_and_everything_is_labelled(tmp_path):
    plan = plan_for(
        tmp_path,
        COMPOSE_API_DB,
        files={"api/Dockerfile.prod": "FROM python:3.12\nEXPOSE 8000\n", ".env": "DB_PASSWORD=hunter2\nPORT=8000\n"},
    )
    api, worker, db = svc(plan, "api"), svc(plan, "worker"), svc(plan, "db")
    tag = "portfolio-grader/task-api-api:run42"
    assert "build" not in api and api["image"] == tag
    assert worker["image"] == tag  # it reused the image the api service built
    [spec] = plan.builds
    assert spec.tag == tag and spec.context == (tmp_path / "api").resolve()
    assert spec.dockerfile == (tmp_path / "api" / "Dockerfile.prod").resolve()
    assert spec.args == {"APP_ENV": "production"} and spec.target == "runtime"
    for service in (api, worker, db):
        assert service["labels"].items() >= LABELS.items()
        assert "container_name" not in service
        assert service["mem_limit"] == "512m" and service["pids_limit"] == 128 and service["cpus"] == 0.5
        assert "no-new-privileges:true" in service["security_opt"] and service["cap_drop"] == ["ALL"]
    assert "cpu_quota" not in api and api["restart"] == "unless-stopped"
    assert "cap_add" not in api  # the API gets no capabilities back
    assert set(cr.DATASTORE_CAPS) <= set(db["cap_add"])
    assert api["networks"] == {"default": {"aliases": ["task_api"]}}
    assert db["networks"] == {"default": {"aliases": ["task_db"]}}
    assert db["logging"] == {"driver": "json-file", "options": {"max-size": "10m", "max-file": "2"}}  # ours, not theirs
    assert api["volumes"] == [f"{(tmp_path / 'api' / 'src').resolve()}:/app/src"]
    assert api["environment"]["DATABASE_URL"] == "postgresql://app:hunter2@db:5432/app"
    assert db["environment"]["POSTGRES_PASSWORD"] == "hunter2"
    assert api["env_file"] == [str((tmp_path / ".env").resolve())]
    doc = plan.doc
    assert "version" not in doc and not any(k.startswith("x-") for k in doc)
    assert doc["volumes"]["pgdata"]["labels"] == LABELS and "name" not in doc["volumes"]["pgdata"]
    assert doc["networks"]["backend"]["labels"] == LABELS and doc["networks"]["default"]["labels"] == LABELS
    # no route out at run time: the stack's networks do not masquerade (runtime/sandbox.py)
    assert all(n["driver_opts"] == {"com.docker.network.bridge.enable_ip_masquerade": "false"}
               for n in doc["networks"].values())
    assert plan.api_service == "api" and plan.api_ports == [8000]
    assert plan.project == "pg-run42"


def test_interpolation_never_reads_the_graders_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("HOME", "/home/grader")
    plan = plan_for(
        tmp_path,
        "services:\n  api:\n    image: x\n    ports: ['8000']\n    environment:\n      - TOKEN=${GITHUB_TOKEN}\n"
        "      - GITHUB_TOKEN\n      - PRICE=$$5\n      - FROM_EXAMPLE\n    command: echo ${HOME:-none}\n",
        files={".env.example": "FROM_EXAMPLE=yes\n"},
    )
    env = svc(plan, "api")["environment"]
    assert env["TOKEN"] == "" and "GITHUB_TOKEN" not in env and env["FROM_EXAMPLE"] == "yes"
    assert env["PRICE"] == "$5"
    assert svc(plan, "api")["command"] == "echo none"
    assert "PRICE: $$5" in plan.dump()  # compose sees a literal dollar
    assert any(".env.example" in n for n in plan.notes)


def test_an_example_env_file_stands_in_for_the_uncommitted_env_and_its_empty_secrets_get_random_values(tmp_path):
    plan = plan_for(
        tmp_path,
        {"services": {"api": {"image": "x", "ports": ["8000"], "env_file": [".env"], "environment": ["PORT=8000"]}}},
        files={".env.example": "DATABASE_URL=postgres://user:pw@db:5432/app\nSECRET_KEY=\nDEBUG=\n"},
    )
    api = svc(plan, "api")
    assert plan.example_env_files == [".env.example"] and plan.missing_env_files == []
    assert api["env_file"] == [str(tmp_path / ".env.example")]
    assert len(api["environment"]["SECRET_KEY"]) >= 20 and "DEBUG" not in api["environment"]
    assert api["environment"]["PORT"] == "8000"
    [note] = [n for n in plan.notes if "in place of the uncommitted .env" in n]
    assert ("it sets DATABASE_URL; left empty: DEBUG; random values for this grade only: SECRET_KEY" in note
            and api["environment"]["SECRET_KEY"] not in note)


def test_an_uncommitted_env_file_without_an_example_is_named_in_the_start_failure_advice(tmp_path):
    plan = plan_for(tmp_path, {"services": {"api": {"image": "x", "ports": ["8000"], "env_file": ".env"}}})
    assert plan.missing_env_files == [".env"] and plan.example_env_files == []
    advice = c._missing_env_files(plan)
    assert "reads .env, which the repository does not commit" in advice and "`env:`" in advice
    assert c._missing_env_files(plan_for(tmp_path / "other", {"services": {"api": {"image": "x"}}})) == ""


def test_interpolate_forms():
    env = {"A": "a", "EMPTY": ""}
    assert cf.interpolate("${A}-$A-${B:-d}-${EMPTY:-e}-${EMPTY-f}-${A:+alt}-${B+alt}-$$A", env) == "a-a-d-e--alt--$A"
    assert cf.interpolate("${B:-${A}}", env) == "a"
    with pytest.raises(cf.ComposeRefused, match="requires the variable B"):
        cf.interpolate("${B:?set B}", env)


@pytest.mark.parametrize(
    ("service", "fragment"),
    [
        ({"image": "x", "volumes": ["/var/run/docker.sock:/var/run/docker.sock"]}, "Docker socket"),
        ({"image": "x", "volumes": [{"type": "bind", "source": "/var/run/docker.sock", "target": "/s"}]}, "Docker socket"),
        ({"image": "x", "volumes": ["/:/host"]}, "root directory"),
        ({"image": "x", "volumes": ["/etc:/etc2:ro"]}, "outside the repository"),
        ({"image": "x", "volumes": ["~/.ssh:/root/.ssh"]}, "outside the repository"),
        ({"image": "x", "network_mode": "host"}, "network_mode: host"),
        ({"image": "x", "pid": "host"}, "pid: host"),
        ({"image": "x", "devices": ["/dev/kvm"]}, "devices"),
        ({"image": "x", "security_opt": ["seccomp:unconfined"]}, "sandbox"),
        ({"build": {"context": "https://github.com/x/y.git"}}, "remote context"),
        ({"build": {"context": "../.."}}, "outside the repository"),
    ],
)
def test_refusals(tmp_path, service, fragment):
    plan = plan_for(tmp_path / "repo", {"services": {"api": service}})
    assert plan.refusal is not None and fragment in plan.refusal
    assert plan.doc is None


def test_privileged_and_added_capabilities_are_withheld_with_a_note_not_refused(tmp_path):
    plan = plan_for(tmp_path / "repo", {"services": {"api": {"build": ".", "privileged": True,
                                                             "cap_add": ["SYS_ADMIN", "NET_BIND_SERVICE"]}}},
                    files={"Dockerfile": "FROM python:3.12-slim\n"})
    assert plan.refusal is None
    api = svc(plan, "api")
    assert "privileged" not in api and api["cap_add"] == ["NET_BIND_SERVICE"] and api["cap_drop"] == ["ALL"]
    assert any("asks for `privileged: true`; it ran unprivileged" in n for n in plan.notes), plan.notes
    assert any("SYS_ADMIN; it ran without" in n for n in plan.notes), plan.notes


def test_refuses_external_volumes(tmp_path):
    plan = plan_for(tmp_path, {"services": {"api": {"image": "x"}}, "volumes": {"data": {"external": True}}})
    assert plan.refusal and "external volume 'data'" in plan.refusal


def test_relative_mounts_inside_are_kept_escaping_ones_dropped(tmp_path):
    repo = tmp_path / "repo"
    plan = plan_for(
        repo,
        {"services": {"api": {"image": "x", "volumes": [".:/app", "../secrets:/s", "data:/data", "/tmp_anon",
                                                        {"type": "bind", "source": "./src", "target": "/src"}]}},
         "volumes": {"data": None}},
    )
    vols = svc(plan, "api")["volumes"]
    assert vols[0] == f"{repo.resolve()}:/app"
    assert "data:/data" in vols and "/tmp_anon" in vols
    assert {"type": "bind", "source": str((repo / "src").resolve()), "target": "/src"} in vols
    assert not any("secrets" in str(v) for v in vols)
    assert any("outside the repository" in n for n in plan.notes)


def test_api_gets_candidate_ports_and_port_env_when_it_publishes_none(tmp_path):
    plan = plan_for(
        tmp_path,
        {"services": {"app": {"build": "."}, "db": {"image": "postgres:16"}}},
        files={"Dockerfile": "FROM node:20\nEXPOSE 3000\n"},
    )
    app = svc(plan, "app")
    assert plan.api_service == "app" and plan.api_ports[0] == 3000 and 8000 in plan.api_ports
    assert "127.0.0.1::3000" in app["ports"] and app["environment"]["PORT"] == "3000"


def test_a_port_the_dockerfile_sets_is_probed_first_and_not_overridden(tmp_path):
    plan = plan_for(tmp_path, {"services": {"app": {"build": "."}}},
                    files={"Dockerfile": "FROM node:20\nEXPOSE 3000\nENV NODE_ENV=production PORT=5005\n"})
    assert plan.api_ports[0] == 5005 and 3000 in plan.api_ports
    assert "PORT" not in (svc(plan, "app").get("environment") or {})


def test_manifest_port_and_service_win(tmp_path):
    plan = plan_for(
        tmp_path,
        {"services": {"web": {"build": ".", "ports": ["80:80"]}, "backend": {"image": "x", "expose": ["9000"]}}},
        files={"Dockerfile": "FROM nginx\n"},
        manifest=Manifest(service="backend", port=9000),
    )
    assert plan.api_service == "backend" and plan.api_ports == [9000]
    assert svc(plan, "backend")["ports"] == ["127.0.0.1::9000"]


def test_identical_builds_are_built_once(tmp_path):
    plan = plan_for(
        tmp_path,
        {"services": {"api": {"build": ".", "ports": ["8000:8000"]}, "worker": {"build": ".", "command": "worker"}}},
        files={"Dockerfile": "FROM python:3.12\n"},
    )
    [spec] = plan.builds
    assert spec.services == ["api", "worker"] and svc(plan, "worker")["image"] == spec.tag


SANDBOX_TMPFS = ["/tmp:rw,nosuid,nodev,size=256m", "/var/tmp:rw,nosuid,nodev,size=256m", "/run:rw,nosuid,nodev,size=256m"]
STACK = {
    "services": {
        "api": {"build": ".", "image": "shop:dev", "ports": ["8000:8000"]},
        "worker": {"build": {"context": "."}, "command": "worker"},
        "beat": {"image": "shop:dev", "command": "beat"},  # runs the image the api service builds
        "db": {"image": "postgres:16", "volumes": ["pg:/var/lib/postgresql/data"]},
        "cache": {"image": "redis:7"},
        "proxy": {"image": "nginx", "ports": ["80:80"]},
    },
    "volumes": {"pg": None},
}


def test_services_built_from_the_repo_get_a_read_only_root_and_the_sandbox_tmpfs(tmp_path):
    plan = plan_for(tmp_path, STACK, files={"Dockerfile": "FROM python:3.12-slim\nEXPOSE 8000\n"})
    assert [spec.services for spec in plan.builds] == [["api", "worker"]]
    for name in ("api", "worker", "beat"):
        assert svc(plan, name)["read_only"] is True, name
        assert svc(plan, name)["tmpfs"] == SANDBOX_TMPFS, name  # sandbox.py's mounts, the single container's
    assert SANDBOX_TMPFS == [f"{p}:{o}" for p, o in sandbox.tmpfs_mounts(OPTS).items()]
    # datastores and images not built from the repo keep a writable root
    for name in ("db", "cache", "proxy"):
        assert "read_only" not in svc(plan, name) and "tmpfs" not in svc(plan, name), name
    assert plan.read_only == {"api": [], "worker": [], "beat": []}


def test_read_only_root_keeps_the_learners_tmpfs_and_never_mounts_twice(tmp_path):
    plan = plan_for(
        tmp_path,
        {"services": {
            "api": {"build": ".", "ports": ["8000:8000"], "tmpfs": "/tmp:size=64m"},
            "worker": {"build": ".", "tmpfs": ["/cache", "/var/tmp/"], "volumes": ["runs:/run", {"type": "volume", "target": "/data"}]},
        }, "volumes": {"runs": None}},
        files={"Dockerfile": "FROM python:3.12-slim\n"},
    )
    api, worker = svc(plan, "api"), svc(plan, "worker")
    assert api["read_only"] is True and api["tmpfs"] == ["/tmp:size=64m", *SANDBOX_TMPFS[1:]]
    assert worker["tmpfs"] == ["/cache", "/var/tmp/", SANDBOX_TMPFS[0]]  # /var/tmp is theirs, /run is a volume
    assert plan.read_only == {"api": ["/tmp:size=64m"], "worker": ["/cache", "/var/tmp/"]}
    # the fallback gives the writable root back: the learner's own tmpfs stays, ours goes
    assert plan.writable() == ["api", "worker"] and plan.read_only == {}
    api, worker = svc(plan, "api"), svc(plan, "worker")
    assert "read_only" not in api and api["tmpfs"] == ["/tmp:size=64m"]
    assert "read_only" not in worker and worker["tmpfs"] == ["/cache", "/var/tmp/"]
    assert "read_only:" not in plan.dump()


def test_a_read_only_service_gets_its_working_folder_as_a_labelled_volume_unless_it_mounts_one(tmp_path):
    plan = plan_for(
        tmp_path,
        {"services": {"api": {"build": ".", "ports": ["8000:8000"]},
                      "worker": {"build": ".", "volumes": ["./data:/app"]},
                      "db": {"image": "postgres:16"}}},
        files={"Dockerfile": "FROM python:3.12-slim\nWORKDIR /app\n"},
    )
    assert plan.writable_workdirs({"api": "/app", "worker": "/app", "db": "/var/lib/postgresql"}) == ["api"]
    assert svc(plan, "api")["volumes"] == ["pg-work-api:/app"]
    assert plan.doc["volumes"]["pg-work-api"]["labels"]["portfolio-grader.run"] == "run42"
    assert svc(plan, "worker")["volumes"] == [f"{tmp_path}/data:/app"] and "volumes" not in svc(plan, "db")


def test_a_datastore_built_from_the_repo_and_a_sandbox_without_read_only_stay_writable(tmp_path):
    files = {"db/Dockerfile": "FROM postgres:16 AS base\nCOPY init.sql /docker-entrypoint-initdb.d/\nFROM base\n",
             "Dockerfile": "FROM node:18 AS assets\nRUN npm ci\nFROM python:3.12-slim AS app\nCOPY --from=assets /a /a\n"
                           "FROM postgres:16 AS dev-db\n",
             "init.sql": ""}
    compose = {"services": {"api": {"build": {"context": ".", "target": "app"}, "ports": ["8000:8000"]},
                            "db": {"build": "./db"}}}
    plan = plan_for(tmp_path, compose, files=files)
    assert svc(plan, "api")["read_only"] is True  # its target stage is python, not the later postgres stage
    assert "read_only" not in svc(plan, "db") and "tmpfs" not in svc(plan, "db")
    assert any("'db' is built on postgres:16, a datastore image" in n for n in plan.notes), plan.notes
    off = plan_for(tmp_path, compose, files=files, options=RuntimeOptions(run_id="run42", read_only=False))
    assert off.read_only == {} and "read_only" not in svc(off, "api") and "tmpfs" not in svc(off, "api")


def test_choose_api_service_rules():
    services = {
        "db": {"image": "postgres:16", "ports": ["5432"]},
        "cache": {"image": "bitnami/redis:7"},
        "worker": {"build": "."},
        "api": {"build": ".", "ports": ["8000"]},
        "proxy": {"image": "nginx", "ports": ["80"]},
    }
    pick = cr.choose_api_service
    assert pick(services, built={"worker", "api"}, publishing={"db", "api", "proxy"}) == "api"
    assert pick(services, built={"worker"}, publishing={"db", "proxy"}) == "worker"
    assert pick(services, built=set(), publishing={"db", "proxy"}) == "proxy"
    assert pick(services, built=set(), publishing={"db"}) is None
    assert pick(services, built=set(), publishing=set(), manifest_service="cache") == "cache"
    notes: list[str] = []
    assert pick(services, built={"api"}, publishing=set(), manifest_service="nope", notes=notes) == "api" and notes


@pytest.mark.parametrize(
    ("image", "datastore"),
    [("postgres:16", True), ("docker.io/library/redis:7-alpine", True), ("bitnami/mongodb:6", True),
     ("mcr.microsoft.com/mssql/server:2022-latest", True), ("rabbitmq:3-management", True),
     ("python:3.12", False), ("ghcr.io/me/task-api:latest", False), ("nginx", False), (None, False)],
)
def test_is_datastore_image(image, datastore):
    assert cr.is_datastore_image(image) is datastore


def test_unreadable_compose_is_a_clear_refusal(tmp_path):
    plan = plan_for(tmp_path, "services:\n  api: [unclosed\n")
    assert plan.refusal and "not valid YAML" in plan.refusal
    plan = plan_for(tmp_path, "services: {}\n")
    assert plan.refusal and "no `services:`" in plan.refusal


# CI provisions Compose v1, so there the test runs (and fails without it); elsewhere only v2 may exist
@pytest.mark.skipif(shutil.which("docker-compose") is None and not os.environ.get("CI"),
                    reason="docker-compose (v1) is not installed here (only Compose v2)")
def test_docker_compose_v1_accepts_the_rewritten_file(tmp_path):
    plan = plan_for(
        tmp_path,
        COMPOSE_API_DB,
        files={"api/Dockerfile.prod": "FROM python:3.12\n", ".env": "DB_PASSWORD=pw\n", "api/src/x.py": ""},
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "compose.yml").write_text(plan.dump())
    (out / "empty.env").write_text("")
    tool = ct.ComposeTool(1, "1.29.2", ("docker-compose",))
    cmd = [*tool.base(out / "compose.yml", tmp_path, plan.project, env_file=str(out / "empty.env")), "config"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    api = config["services"]["api"]
    port = api["ports"][0]
    if isinstance(port, str):  # v1 keeps the short syntax
        assert port in ("127.0.0.1::8000", "127.0.0.1::8000/tcp")
    else:  # v2 expands it
        assert port["host_ip"] == "127.0.0.1" and not port.get("published")
    assert api["mem_limit"] in ("512m", 536870912) and api["pids_limit"] == 128
    assert api["labels"]["portfolio-grader.run"] == "run42"
    # read_only and tmpfs are in the v1 file format too; the datastore keeps its writable root
    for name in ("api", "worker"):
        assert config["services"][name]["read_only"] is True and config["services"][name]["tmpfs"] == SANDBOX_TMPFS
    assert "read_only" not in config["services"]["db"]


# ---------------------------------------------------------------- compose CLI


def test_compose_commands_v2_and_v1():
    v2 = ct.ComposeTool(2, "2.24.6", ("/usr/bin/docker", "compose"))
    base = v2.base("/tmp/g/compose.yml", "/repo", "pg-run42", env_file="/tmp/g/empty.env")
    assert base == ["/usr/bin/docker", "compose", "-f", "/tmp/g/compose.yml", "--project-directory", "/repo",
                    "-p", "pg-run42", "--env-file", "/tmp/g/empty.env"]
    assert v2.up(base)[-4:] == ["up", "-d", "--no-build", "--remove-orphans"]
    assert v2.down(base)[-5:] == ["down", "-v", "--remove-orphans", "--timeout", "5"]
    assert v2.logs(base, "api")[-5:] == ["logs", "--no-color", "--tail", "200", "api"]
    assert v2.port(base, "api", 8000)[-3:] == ["port", "api", "8000"]
    assert v2.name == "docker compose v2.24.6"
    v1 = ct.ComposeTool(1, "1.29.2", ("/usr/bin/docker-compose",))
    assert v1.base("f.yml", "/repo", "p")[:3] == ["/usr/bin/docker-compose", "-f", "f.yml"]
    assert v1.name == "docker-compose 1.29.2 (v1)"


def test_choose_compose_prefers_v2():
    plugin = b.CliProbe("/usr/local/bin/docker", (28, 2), has_compose=True, compose_version="2.24.6")
    plain = b.CliProbe("/usr/bin/docker", (20, 10))
    v1 = ("/usr/bin/docker-compose", "docker-compose version 1.29.2, build unknown")
    v2_standalone = ("/usr/local/bin/docker-compose", "Docker Compose version v2.20.0")
    assert ct.choose_compose([plain, plugin], v1).command == ("/usr/local/bin/docker", "compose")
    assert ct.choose_compose([plain], v2_standalone).major == 2
    chosen = ct.choose_compose([plain], v1)
    assert chosen.major == 1 and chosen.command == ("/usr/bin/docker-compose",)
    assert ct.choose_compose([plain], None) is None


def test_minimal_env_drops_secrets(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("COMPOSE_FILE", "other.yml")
    env = c.minimal_env()
    assert "AWS_SECRET_ACCESS_KEY" not in env and "COMPOSE_FILE" not in env and "PATH" in env and env["DOCKER_HOST"]


# ---------------------------------------------------------------- start() without Docker


def test_start_without_dockerfile_or_compose_is_not_started(tmp_path):
    ws = Workspace(name="x", source=Source(repo=str(tmp_path)), path=tmp_path)
    with start(ws, RepoFacts(root=tmp_path), OPTS) as handle:
        assert handle.service.kind == "none" and handle.service.status == "not_started"
        assert handle.service.detail == "no Dockerfile or compose file in the repository"
        assert handle.alive() is False and handle.exec("ls")[0] != 0 and handle.logs() == []


def test_start_with_a_refused_compose_starts_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")  # no engine needed to refuse
    (tmp_path / "docker-compose.yml").write_text("services:\n  api:\n    image: x\n    pid: host\n")
    ws = Workspace(name="x", source=Source(repo=str(tmp_path)), path=tmp_path)
    with start(ws, RepoFacts(root=tmp_path, compose_file="docker-compose.yml"), OPTS) as handle:
        assert handle.service.status == "start_failed" and "pid: host" in handle.service.detail


# ---------------------------------------------------------------- external


def test_normalise_url():
    assert normalise_url("https://api.example.com/") == "https://api.example.com"
    assert normalise_url("http://h:8080/api/v1/") == "http://h:8080/api/v1"
    assert normalise_url("ftp://x") is None and normalise_url("example.com") is None


@pytest.fixture
def http_server():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_external_url_that_answers_is_running(http_server, tmp_path):
    ws = Workspace(name="live", source=Source(url=http_server))
    with start(ws, RepoFacts(), RuntimeOptions(run_id="e1", start_timeout=5), url=http_server + "/") as handle:
        s = handle.service
        assert (s.kind, s.status, s.base_url) == ("external", "running", http_server)
        assert "404" in s.detail and handle.alive() and handle.exec("ls")[0] == 125 and handle.logs() == []


def test_external_url_that_never_answers_is_start_failed():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with run_external(f"http://127.0.0.1:{port}", RuntimeOptions(run_id="e2", start_timeout=1)) as handle:
        assert handle.service.status == "start_failed" and "no HTTP answer" in handle.service.detail
    with run_external("not a url", RuntimeOptions(run_id="e3")) as handle:
        assert handle.service.status == "start_failed"


# ---------------------------------------------------------------- migrations a learner must run (runtime/migrations.py)

from portfolio_grader.runtime import migrations as mg  # noqa: E402

FLASK_MIGRATE_ENV = ("import logging\nfrom flask import current_app\nfrom alembic import context\n"
                     "config = context.config\ndef get_engine():\n    return current_app.extensions['migrate'].db.engine\n")
PLAIN_ALEMBIC_ENV = "from alembic import context\nfrom app.models import Base\ntarget_metadata = Base.metadata\n"


def layout(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    return root



@pytest.mark.parametrize("files,command,tool", [
    ({"alembic.ini": "[alembic]\nscript_location = alembic\n", "alembic/env.py": PLAIN_ALEMBIC_ENV,
      "requirements.txt": "fastapi\nalembic\n"}, "alembic upgrade head", "Alembic"),
    ({"migrations/alembic.ini": "[alembic]\n", "migrations/env.py": FLASK_MIGRATE_ENV, "app.py": "from flask import Flask\n",
      "requirements.txt": "Flask==3.1\nFlask-Migrate==4.1\n"}, "flask db upgrade", "Flask-Migrate"),
    # Flask-Migrate known from the requirements even when env.py was rewritten
    ({"migrations/env.py": PLAIN_ALEMBIC_ENV, "requirements.txt": "flask_migrate\n"}, "flask db upgrade", "Flask-Migrate"),
    ({"manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'library.settings')\n"
                   "from django.core.management import execute_from_command_line\n"},
     "python manage.py migrate --noinput", "Django"),
    ({"package.json": '{"scripts": {"start": "node src/index.js", "migrate": "node db/migrate.js"}}'},
     "npm run migrate", "npm script"),
    ({"package.json": '{"scripts": {"db:migrate": "sequelize-cli db:migrate", "migrate:make": "knex migrate:make"}}'},
     "npm run db:migrate", "npm script"),
    ({"package.json": '{"dependencies": {"@prisma/client": "6"}}', "prisma/schema.prisma": "model Book {}",
      "prisma/migrations/20250101_init/migration.sql": "CREATE TABLE book ();"},
     "npx prisma migrate deploy", "Prisma"),
    ({"package.json": '{"dependencies": {"sequelize": "6", "sequelize-cli": "6"}}', "migrations/01-books.js": ""},
     "npx sequelize-cli db:migrate", "Sequelize"),
    ({"package.json": '{"dependencies": {"sequelize": "6"}}', ".sequelizerc": "module.exports = {}"},
     "npx sequelize-cli db:migrate", "Sequelize"),
    ({"package.json": '{"dependencies": {"knex": "3", "pg": "8"}}', "knexfile.js": "module.exports = {}"},
     "npx knex migrate:latest", "Knex"),
])
def test_migration_command_from_the_repo_layout(tmp_path, files, command, tool):
    found = mg.detect_command([layout(tmp_path, files)])
    assert found is not None and (found.command, found.tool) == (command, tool), found
    assert found.found


@pytest.mark.parametrize("files", [
    {"requirements.txt": "fastapi\nsqlalchemy\n", "app/main.py": "Base.metadata.create_all(engine)\n"},
    {"package.json": '{"scripts": {"start": "node index.js", "migrate:make": "knex migrate:make", '
                     '"migration:generate": "typeorm migration:generate"}}'},
    # a prisma schema with no migration folder (db push projects), a manage.py that is not Django's
    {"package.json": "{}", "prisma/schema.prisma": "model Book {}"},
    {"manage.py": "import click\n@click.group()\ndef cli(): pass\n"},
    # a migrations/ folder of plain SQL files, and a knexfile without knex
    {"migrations/001_init.sql": "CREATE TABLE books ();", "knexfile.js": "", "package.json": '{"dependencies": {}}'},
    {"package.json": "not json"},
])
def test_no_migration_command_when_the_layout_names_none(tmp_path, files):
    assert mg.detect_command([layout(tmp_path, files)]) is None


def test_the_api_build_context_is_looked_at_before_the_repo_root(tmp_path):
    layout(tmp_path, {"package.json": '{"scripts": {"migrate": "node tools/migrate.js"}}',
                      "api/manage.py": "from django.core.management import execute_from_command_line\n"})
    assert mg.detect_command([tmp_path / "api", tmp_path]).tool == "Django"
    assert mg.detect_command([tmp_path / "missing", tmp_path]).command == "npm run migrate"


def test_log_lines_after_a_mark_use_docker_timestamps():
    log = ("2026-12-04T21:00:01.000000100Z GET /books 500\n"
           "2026-12-04T21:00:01.000000200Z sqlite3.OperationalError: no such table: books\n")
    mark = mg.last_stamp(log)
    later = log + "2026-12-04T21:00:09.500000000Z GET /books 200\n  continued line\n"
    assert mg.lines_after(later, mark) == "GET /books 200\n  continued line"
    assert mg.lines_after(log, mark) == ""
    assert mg.lines_after(log, None).startswith("GET /books 500\n") and mg.last_stamp("") is None


def test_output_tail_keeps_the_last_lines_on_one_line():
    out = "\n".join(f"step {i}" for i in range(20)) + "\n\n"
    assert mg.output_tail(out) == " | ".join(f"step {i}" for i in range(12, 20))


def test_schema_notes_say_what_ran_and_what_a_reviewer_expects():
    cmd = mg.MigrationCommand("flask db upgrade", "Flask-Migrate", "migrations/env.py")
    ran = mg.SchemaOutcome("recipe", "no such table: recipe", command=cmd, exit_code=0, seconds=1.2,
                           output="INFO [alembic] Running upgrade -> 1a2b, recipes", fixed=True,
                           before="GET /recipes 500", after="GET /recipes 200").note
    assert "`flask db upgrade`" in ran and "Running upgrade" in ran and "GET /recipes 500" in ran
    assert "GET /recipes 200" in ran and "run on start" in ran and "exited 0" in ran
    failed = mg.SchemaOutcome("recipe", "no such table: recipe", command=cmd, exit_code=1, output="Error: no app",
                              still="no such table: recipe").note
    assert "exited 1" in failed and "still missing" in failed and "went on without the schema" in failed
    none = mg.SchemaOutcome("recipe", "no such table: recipe").note
    assert "no migration command was found" in none and "`recipe`" in none and "setup:" in none
    given = mg.SchemaOutcome("recipe", "no such table: recipe", setup_given=True).note
    assert "runs no migrations of its own" in given


def test_an_api_that_publishes_its_port_gets_port_env_unless_it_sets_port(tmp_path):
    # an Express app reading process.env.PORT, published as 3000:3000 and given no PORT: it would listen on a random port
    plan = plan_for(tmp_path, {"services": {"api": {"build": ".", "ports": ["3000:3000"]}}},
                    files={"Dockerfile": "FROM node:20\nEXPOSE 3000\n"})
    assert svc(plan, "api")["environment"]["PORT"] == "3000" and plan.api_ports == [3000]
    assert any("ran with PORT=3000, the container port the grader publishes" in n for n in plan.notes), plan.notes
    (tmp_path / "second").mkdir()
    kept = plan_for(tmp_path / "second", {"services": {"api": {"build": ".", "ports": ["3000:3000"], "env_file": ".env"}}},
                    files={"Dockerfile": "FROM node:20\n", ".env": "PORT=3000\n"})
    assert "PORT" not in (svc(kept, "api").get("environment") or {})
    assert not any("ran with PORT" in n for n in kept.notes)


def test_a_refused_connection_the_app_waited_out_is_not_the_cause_of_a_later_crash():
    # seen on a Flask repo: `while ! </dev/tcp/db/5432; do sleep 1; done; python3 main.py`, then psycopg2 fails to load
    waited = ("bash: connect: Connection refused\nbash: line 1: /dev/tcp/db/5432: Connection refused\n"
              "Traceback (most recent call last):\n  File \"/opt/app/main.py\", line 3, in <module>\n    from db import"
              " Database\n  File \"/opt/app/db.py\", line 3, in <module>\n    import psycopg2\n"
              "SystemError: initialization of _psycopg raised unreported exception\n")
    found = diagnose(waited)
    assert found.kind == "traceback" and "SystemError: initialization of _psycopg" in found.explanation, found
    # a crash whose own traceback is the refused connection stays "the database was not ready"
    refused = waited.replace("SystemError: initialization of _psycopg raised unreported exception",
                             "psycopg2.OperationalError: could not connect to server: Connection refused")
    assert diagnose(refused).kind == "database_not_ready"
    assert diagnose("Error: connect ECONNREFUSED 172.18.0.2:5432\n").kind == "database_not_ready"
    # seen on a Django repo: the OperationalError's handler itself fails (`self.stdout(...)`): the chain is one crash,
    # and the database not being ready yet is its cause (the grader restarts it until the database answers)
    chained = ("Traceback (most recent call last):\n  File \"/api/core/management/commands/wait_for_db.py\", line 17\n"
               "django.db.utils.OperationalError: connection to server at \"db\", port 5432 failed: Connection refused\n"
               "\n\nDuring handling of the above exception, another exception occurred:\n\n"
               "Traceback (most recent call last):\n  File \"/api/manage.py\", line 22, in <module>\n    main()\n"
               "TypeError: 'OutputWrapper' object is not callable\n")
    assert diagnose(chained).kind == "database_not_ready"
    handler_only = chained[chained.index("Traceback", 1):]  # the second traceback alone, after a wait loop's refusal
    assert diagnose("bash: connect: Connection refused\n" + handler_only).kind == "traceback"


def test_a_file_or_folder_missing_from_the_image_is_named():
    # seen on an Express + Sequelize repo whose start runs `sequelize db:seed:all` and commits no seeders/ folder
    log = ("== 20230711120732-create-contact: migrated (0.024s)\n\n> backendtemplate@1.0.0 seed:up\n"
           "> sequelize db:seed:all\n\n\x1b[31mERROR:\x1b[39m ENOENT: no such file or directory, scandir "
           "'/app/database/seeders'\n")
    found = diagnose(log)
    assert found.kind == "missing_file" and found.explanation.endswith(
        "not in the image: ERROR: ENOENT: no such file or directory, scandir '/app/database/seeders'"), found
    assert "/app/database/seeders" in found.hint and ".gitkeep" in found.hint
    # a Python crash keeps its traceback, which says where it was opened
    assert diagnose("Traceback (most recent call last):\n  File \"/app/main.py\", line 3, in <module>\n"
                    "FileNotFoundError: [Errno 2] No such file or directory: 'config.yml'\n").kind == "traceback"


# the app crashed and a file watcher keeps its container running (seen on Satadru03/fastapi-todo: `uvicorn --reload`
# whose worker failed at import waited out the 90 s start deadline)
UVICORN_RELOAD_CRASH = """INFO:     Will watch for changes in these directories: ['/app']
INFO:     Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)
INFO:     Started reloader process [1] using StatReload
Process SpawnProcess-1:
Traceback (most recent call last):
  File "/app/app/db.py", line 6, in <module>
    engine = create_engine(DATABASE_URL)
sqlalchemy.exc.ArgumentError: Expected string or URL object, got None
"""


@pytest.mark.parametrize("log, line", [
    (UVICORN_RELOAD_CRASH, "INFO: Will watch for changes in these directories: ['/app']"),
    ("Watching for file changes with StatReloader\nException in thread django-main-thread:\nTraceback (most recent "
     "call last):\n  File \"/app/manage.py\", line 3\nImportError: cannot import name 'x'\n",
     "Watching for file changes with StatReloader"),
    ("\x1b[33m[nodemon] starting `node app.js`\x1b[39m\nError: Cannot find module 'dotenv'\n"
     "\x1b[31m[nodemon] app crashed - waiting for file changes before starting...\x1b[39m\n",
     "[nodemon] app crashed - waiting for file changes before starting..."),
    # still starting, or it went on after the traceback, or no watcher at all (it will exit on its own)
    ("INFO:     Started reloader process [1] using StatReload\nINFO:     Waiting for application startup.\n", None),
    (UVICORN_RELOAD_CRASH + "INFO:     Started server process [9]\n", None),
    (UVICORN_RELOAD_CRASH.replace("Started reloader process [1] using StatReload", "Started server process [1]")
     .replace("INFO:     Will watch for changes in these directories: ['/app']\n", ""), None),
    ("[nodemon] app crashed - waiting for file changes before starting...\n[nodemon] restarting due to changes...\n",
     None),
])
def test_a_crash_under_a_file_watcher_is_seen_in_the_log(log, line):
    assert waiting_for_a_change(log) == line
