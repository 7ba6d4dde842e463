"""OS command injection against real in-process APIs that run `df -h <parameters>`: through a shell with the output
in the answer (found by the sum only a shell computes), through a shell with nothing shown (found by timing, with
the sleep-0 control), with an argument list and no shell (pass), and behind an admin role (probed as the manifest's
admin, not evaluated without one)."""

from __future__ import annotations

import subprocess

import pytest
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel

from portfolio_grader.models import Manifest, ManifestAuth, RepoFacts

from ..conftest import kinds, make_context, run


class Login(BaseModel):
    username: str
    password: str


def disk_app(mode: str, *, staff_only: bool = False) -> FastAPI:
    app = FastAPI(title="Disk stats")

    if staff_only:
        @app.post("/login")
        def login(body: Login):
            if (body.username, body.password) != ("chef", "chef-pass"):
                raise HTTPException(401, "wrong credentials")
            return {"access_token": "chef-token", "token_type": "bearer"}

    @app.get("/stats/disk")
    def disk(parameters: str = "", authorization: str | None = Header(None)):
        if staff_only and authorization != "Bearer chef-token":
            raise HTTPException(403, "Only the chef may see disk stats")
        if mode == "list":  # no shell: the payload is one (odd) argument to df
            done = subprocess.run(["df", "-h", parameters or "/"], capture_output=True, text=True, timeout=5)
            return {"output": done.stdout.strip()}
        done = subprocess.run("df -h " + parameters, shell=True, capture_output=True, text=True, timeout=10)
        return {"output": done.stdout.strip() if mode == "echo" else "ok"}

    return app


@pytest.mark.parametrize("mode", ["echo", "blind"])
def test_a_parameter_handed_to_a_shell_is_command_injection(serve, mode):
    outcome = run("injection.command", make_context(serve(disk_app(mode))))
    assert outcome.status == "fail" and kinds(outcome) == {"command_injection"}, outcome
    [finding] = outcome.findings
    assert finding.severity == "critical" and "`parameters`" in finding.message
    assert ("the sum only a shell computes" in finding.message) if mode == "echo" else (
        "with `sleep 0` in" in finding.message and len(finding.evidence) == 4)


def test_an_argument_list_without_a_shell_passes_after_every_payload(serve):
    outcome = run("injection.command", make_context(serve(disk_app("list"))))
    assert outcome.status == "pass", outcome
    assert "GET /stats/disk `parameters`" in outcome.summary and "none ran" in outcome.summary
    control, attack = outcome.evidence
    assert "pg%24%28%28" in attack.request.url and "no pg" in attack.note  # the payload went out, and did not run


def test_a_staff_only_sink_is_probed_as_the_manifests_admin(serve):
    url = serve(disk_app("echo", staff_only=True))
    assert run("injection.command", make_context(url)).status == "not_evaluated"  # 403 to user A, no admin given
    ctx = make_context(url, facts=RepoFacts(manifest=Manifest(auth=ManifestAuth(
        admin={"login": "chef", "password": "chef-pass"}))))
    outcome = run("injection.command", ctx)
    assert outcome.status == "fail" and "as the manifest's admin" in outcome.findings[0].message, outcome
