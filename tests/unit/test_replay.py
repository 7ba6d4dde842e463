"""`portfolio-grader replay`: a finding graded against one run of an app is reproduced against another run of it.

The findings come from real probe runs against in-process apps (tests/probes); the replays go to a fresh
instance of the same app, whose ids and signing secret differ, and to a fixed one. No part of the replay is
mocked: its users are registered and logged in through the app's own auth flow.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.responses import RedirectResponse

from portfolio_grader.cli import main
from portfolio_grader.models import (
    CriterionResult,
    Evidence,
    Finding,
    RequestRecord,
    ResponseRecord,
    RubricRef,
    Scorecard,
    Source,
)
from portfolio_grader.probe import Prober
from portfolio_grader.replay import (
    NotReplayable,
    auth_block,
    plan,
    replay,
    run,
    shell_version,
    substitute_body,
    substitute_json,
    substitute_path,
)
from portfolio_grader.report import render_html

from ..conftest import make_context
from ..conftest import run as run_check
from ..probes.apps import flawed_recipes_app
from ..probes.auth_apps import tasks_app
from ..probes.advanced_apps import LinkIn, shortener_app


def graded(ctx, *check_ids: str) -> Scorecard:
    """A result.json's Scorecard from real checks run against the app behind `ctx`, as the pipeline records it."""
    outcomes = [run_check(check_id, ctx) for check_id in check_ids]
    api = {"resources": [r.collection for r in ctx.api.resources]}
    if ctx.api.auth is not None:
        api["auth"] = auth_block(ctx.api.auth, ctx.known_identities(), ctx.prober.url_for)
    findings = [f for o in outcomes for f in o.findings]
    criterion = CriterionResult(id="c", title="Probed", area=outcomes[0].area, status="fail", points=0, max_points=10,
                                finding_ids=[f.id for f in findings], checks=list(check_ids))
    card = Scorecard(grader_version="test", rubric=RubricRef(name="intermediate", version="1"), source=Source(),
                     name="replay-test", tier="intermediate", score=0, pass_mark=70, passed=False, gates_met=False,
                     criteria=[criterion], findings=findings, checks=outcomes, stages=[],
                     runtime={"kind": "external", "base_url": ctx.service.base_url}, api=api)
    return Scorecard.model_validate_json(card.model_dump_json())  # through result.json, as `replay` reads it


def finding(card: Scorecard, kind: str) -> Finding:
    return next(f for f in card.findings if f.kind == kind)


@pytest.fixture(scope="module")
def bola_write_card():
    """user B's PUT on user A's task is answered 403 but applied: graded on one instance of the task API."""
    from ..conftest import serve_asgi

    with serve_asgi(tasks_app(write_despite_403=True)) as url:
        ctx = make_context(url)
        yield graded(ctx, "ownership.bola")


# ---------------------------------------------------------------- value mapping


def test_old_values_are_replaced_by_whole_segment_long_substring_and_id_field():
    values = {"26": "3", "eyJold.token.sig": "eyJnew.token.sig", "pgAold123": "pgrnew456"}
    assert substitute_path("/recipes/26/ratings?owner=26&q=126", values) == "/recipes/3/ratings?owner=3&q=126"
    assert substitute_path("/recipes/126", values) == "/recipes/126"  # a segment, never a part of one
    body = {"id": 26, "servings": 26, "owner_id": "26", "note": "by pgAold123", "token": "eyJold.token.sig"}
    assert substitute_json(body, values) == {"id": 3, "servings": 26, "owner_id": "3", "note": "by pgrnew456",
                                             "token": "eyJnew.token.sig"}
    assert substitute_body('{"title": "unterminated", ', values) == '{"title": "unterminated", '  # not JSON: kept
    assert substitute_body('{"a":1}', values) == '{"a":1}'  # nothing to change: the bytes as sent


# ---------------------------------------------------------------- replays against fresh and fixed apps


def test_bola_write_reproduces_on_a_fresh_instance_and_not_on_a_fixed_app(serve, bola_write_card):
    card = bola_write_card
    target = finding(card, "bola_write")
    the_plan = plan(card, target)
    assert the_plan.users == ("A", "B")  # the two test users whose tokens the chain carries
    old_token = next(iter(the_plan.old_credentials))

    fresh = Prober(serve(tasks_app(write_despite_403=True)))
    fresh.request("POST", "/auth/register", json={"email": "x@example.com", "password": "Other-pass-9x"})
    token = fresh.request("POST", "/auth/token", content="username=x%40example.com&password=Other-pass-9x",
                          headers={"Content-Type": "application/x-www-form-urlencoded"}).json()["access_token"]
    for title in ("one", "two", "three"):  # someone else's tasks first: the replay's task gets another id
        fresh.request("POST", "/tasks", json={"title": title}, headers={"Authorization": f"Bearer {token}"})
    outcome = run(the_plan, fresh)
    assert outcome.verdict == "reproduces", outcome.reason
    chain = fresh.exchanges[-3:]  # A creates, B's PUT (403), A reads B's change back
    assert [e.status for e in chain] == [201, 403, 200]
    old_id = json.loads(target.evidence[0].response.body)["id"]
    new_id = chain[0].json()["id"]
    assert chain[1].url.endswith(f"/tasks/{new_id}") and chain[2].url.endswith(f"/tasks/{new_id}")
    assert old_token not in json.dumps([e.request_headers for e in fresh.exchanges])  # tokens of the new app
    assert chain[2].json()["title"] == json.loads(chain[1].request_body)["title"]
    assert new_id != old_id

    fixed = Prober(serve(tasks_app()))
    outcome = run(plan(card, target), fixed)
    assert outcome.verdict == "does_not_reproduce"
    assert "step 3" in outcome.reason and "`title`" in outcome.reason, outcome.reason  # A's read-back unchanged


def test_crud_lifecycle_and_fuzzless_findings_reproduce_on_a_fresh_instance_with_other_ids(serve):
    ctx = make_context(serve(flawed_recipes_app()))
    card = graded(ctx, "crud.lifecycle", "errors.malformed_json")
    kinds = {f.kind for f in card.findings}
    assert "crud_lifecycle_broken" in kinds and "server_error" in kinds, kinds
    fresh = Prober(serve(flawed_recipes_app()))
    for title in ("one", "two", "three", "four"):
        fresh.request("POST", "/recipes", json={"title": title})
    outcomes = {o.finding: o for o in replay(card, fresh.base_url)}
    assert all(o.verdict == "reproduces" for o in outcomes.values()), [o.line() for o in outcomes.values()]
    crud = plan(card, finding(card, "crud_lifecycle_broken"))
    old_id = json.loads(crud.steps[0].evidence.response.body)["id"]
    assert run(crud, fresh).verdict == "reproduces"
    chain = fresh.exchanges[-len(crud.steps):]
    new_id = chain[0].json()["id"]
    assert new_id != old_id and all(e.url.endswith(f"/recipes/{new_id}") for e in chain[1:])


def test_jwt_without_expiry_is_judged_by_the_new_token(serve):
    ctx = make_context(serve(tasks_app(no_exp=True)))
    card = graded(ctx, "auth.jwt_lifetime")
    target = finding(card, "jwt_no_expiry")
    assert run(plan(card, target), Prober(serve(tasks_app(no_exp=True)))).verdict == "reproduces"
    outcome = run(plan(card, target), Prober(serve(tasks_app())))
    assert outcome.verdict == "does_not_reproduce" and "expires within a day" in outcome.reason


@pytest.mark.parametrize(("flaw", "check_id", "kind"), [
    ("enumeration", "auth.user_enumeration", "user_enumeration"),  # a wrong password stays wrong
    ("mass_assignment", "ownership.mass_assignment", "mass_assignment"),  # the chain signs its own user up
])
def test_account_findings_reproduce_on_a_fresh_instance_and_not_on_a_fixed_app(serve, flaw, check_id, kind):
    card = graded(make_context(serve(tasks_app(**{flaw: True}))), check_id)
    target = finding(card, kind)
    fresh = run(plan(card, target), Prober(serve(tasks_app(**{flaw: True}))))
    assert fresh.verdict == "reproduces", fresh.reason
    fixed = run(plan(card, target), Prober(serve(tasks_app())))
    assert fixed.verdict == "does_not_reproduce", fixed.reason


def cookie_notes_app():
    """A Flask API that logs users in with a session cookie; GET /notes/<id> has no owner check (bola_read)."""
    import secrets

    from flask import Flask, jsonify, request, session

    app = Flask("cookie-notes")
    app.secret_key = secrets.token_hex(16)  # each instance signs its cookies with its own secret
    users: dict[str, str] = {}
    notes: dict[int, dict] = {}
    body = {"type": "object", "required": ["username", "password"],
            "properties": {"username": {"type": "string"}, "password": {"type": "string"}}}
    note = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
    spec = {"openapi": "3.0.3", "info": {"title": "cookie notes", "version": "1"},
            "components": {"securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "session"}}},
            "security": [{"session": []}], "paths": {
                "/register": {"post": {"security": [], "requestBody": {"content": {"application/json": {"schema": body}}},
                                       "responses": {"201": {"description": "made"}}}},
                "/login": {"post": {"security": [], "requestBody": {"content": {"application/json": {"schema": body}}},
                                    "responses": {"200": {"description": "in"}}}},
                "/notes": {"post": {"requestBody": {"content": {"application/json": {"schema": note}}},
                                    "responses": {"201": {"description": "made"}}}},
                "/notes/{note_id}": {"get": {"parameters": [{"name": "note_id", "in": "path", "required": True,
                                                             "schema": {"type": "integer"}}],
                                             "responses": {"200": {"description": "a note"}}}}}}

    @app.get("/openapi.json")
    def openapi():
        return jsonify(spec)

    @app.post("/register")
    def register():
        data = request.get_json()
        users[data["username"]] = data["password"]
        return jsonify({"username": data["username"]}), 201

    @app.post("/login")
    def login():
        data = request.get_json()
        if users.get(data.get("username")) != data.get("password"):
            return jsonify({"error": "bad credentials"}), 401
        session["user"] = data["username"]
        return jsonify({"ok": True})

    @app.post("/notes")
    def create():
        if "user" not in session:
            return jsonify({"error": "log in"}), 401
        notes[len(notes) + 1] = {"id": len(notes) + 1, "text": request.get_json()["text"]}
        return jsonify(notes[len(notes)]), 201

    @app.get("/notes/<int:note_id>")
    def read(note_id):
        if "user" not in session:
            return jsonify({"error": "log in"}), 401
        return (jsonify(notes[note_id]), 200) if note_id in notes else (jsonify({"error": "no such note"}), 404)

    return app


def test_a_cookie_session_api_is_replayed_with_the_new_apps_cookies_live_and_in_the_shell(serve):
    card = graded(make_context(serve(cookie_notes_app())), "ownership.bola")
    target = finding(card, "bola_read")
    assert card.api["auth"]["send_header"] == "Cookie"
    outcome = run(plan(card, target), Prober(serve(cookie_notes_app())))
    assert outcome.verdict == "reproduces", outcome.reason
    script = shell_version(card, target, serve(cookie_notes_app()))
    assert "TOKEN_A=$(curl -sS -o /dev/null -D - " in script and "-H 'Cookie: '\"$TOKEN_B\"" in script
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    statuses = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("HTTP/")]
    assert statuses[-1] == "200" and json.loads(done.stdout.rstrip().splitlines()[-1])["id"], done.stdout


# ---------------------------------------------------------------- the shell version


def test_shell_version_sets_up_users_then_replays_the_chain_with_variables(serve, bola_write_card):
    card = bola_write_card
    target = finding(card, "bola_write")
    base = serve(tasks_app(write_despite_403=True))
    script = shell_version(card, target, base)
    lines = script.splitlines()
    assert lines[0] == f"BASE={base}"
    assert any(line.startswith("TOKEN_A=$(curl") for line in lines) and any(l.startswith("TOKEN_B=$(") for l in lines)
    assert lines.index(next(l for l in lines if l.startswith("TOKEN_B="))) < lines.index(
        next(l for l in lines if "-X PUT" in l))  # setup first
    assert '"$TOKEN_B"' in next(l for l in lines if "-X PUT" in l) and "$NEW_1" in lines[-1]
    assert next(iter(plan(card, target).old_credentials)) not in script  # no grade token left in it
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    answers = [block for block in done.stdout.split("HTTP/1.1 ") if block]
    assert done.returncode == 0, done.stderr
    assert [a[:3] for a in answers] == ["201", "201", "403", "200"], done.stdout  # 2 sign-ups, B's PUT, A's read
    assert json.loads(answers[-1].split("\n\n", 1)[1])["title"].startswith("pg-b")  # B's change, read by A


def test_the_scorecard_shows_the_shell_version_beside_the_evidence_escaped(bola_write_card):
    card = bola_write_card
    hostile = card.model_copy(update={"findings": [f.model_copy(update={"evidence": [
        e.model_copy(update={"request": e.request.model_copy(update={"body": '{"title": "</pre><script>x</script>"}'})})
        if e.request and e.request.method == "PUT" else e for e in f.evidence]}) for f in card.findings]})
    page = render_html(hostile)
    assert "portfolio-grader replay" in page and "BASE=http://localhost:8000" in page
    assert "TOKEN_B=$(curl" in page
    assert "<script>x</script>" not in page and "&lt;/pre&gt;&lt;script&gt;" in page


# ---------------------------------------------------------------- what cannot be replayed, and why


def _card(*findings: Finding, api: dict | None = None) -> Scorecard:
    api = api or {"resources": ["/x"], "auth": {"register": "POST /r", "login": "POST /l", "users": []}}
    return Scorecard(grader_version="t", rubric=RubricRef(name="beginner", version="1"), source=Source(), name="n",
                     tier="beginner", score=0, pass_mark=70, passed=False, gates_met=False, criteria=[],
                     findings=list(findings), stages=[], runtime={"base_url": "http://127.0.0.1:5000"},
                     api=api)


def _exchange(method="GET", path="/x", status=200, body=None, headers=None, response_body="{}") -> Evidence:
    return Evidence(request=RequestRecord(method=method, url="http://127.0.0.1:5000" + path, headers=headers or {},
                                          body=body),
                    response=ResponseRecord(status=status, body=response_body), curl="curl")


@pytest.mark.parametrize(("made", "reason"), [
    (Finding(id="F1", check="repo.docker_user", kind="dockerfile_runs_as_root", severity="medium", message="m",
             evidence=[Evidence(file="Dockerfile", excerpt="FROM x", curl="grep USER Dockerfile")]),
     "a repository finding: it rests on Dockerfile, not on a request"),
    (Finding(id="F2", check="runtime.builds", kind="build_failed", severity="critical", message="m",
             evidence=[Evidence(excerpt="log", curl="docker build .")]), "the build or start of the container"),
    (Finding(id="F3", check="load.latency", kind="slow_under_load", severity="medium", message="m",
             evidence=[_exchange()]), "a measurement under load"),
    (Finding(id="F4", check="auth.jwt_forgery", kind="jwt_alg_none_accepted", severity="critical", message="m",
             evidence=[_exchange()]), "a forged token"),
    (Finding(id="F5", check="contract.no_server_errors", kind="server_error", severity="high", message="m",
             evidence=[_exchange("POST", "/x", 500, body='{"a": "' + "x" * 50 + '... [4000 more characters]')]),
     "kept only as an excerpt"),
    (Finding(id="F10", check="contract.response_schema", kind="schema_violation", severity="medium", message="m",
             evidence=[_exchange(response_body='{"total": 20, "notes": []}')]), "listed objects other requests"),
    (Finding(id="F7", check="contract.no_server_errors", kind="server_error", severity="high", message="m",
             evidence=[_exchange(headers={"X-Api-Key": "[redacted]"})]), "a secret the grader redacted"),
    (Finding(id="F9", check="tenancy.isolation", kind="tenant_isolation_broken", severity="critical", message="m",
             evidence=[_exchange(headers={"Authorization": "Bearer lk_made-by-the-grade"})]),
     "a credential the grade made outside this chain"),
    (Finding(id="F8", check="contract.routes_match", kind="spec_route_drift", severity="low", message="m",
             evidence=[Evidence(file="app.py:59", curl="grep -n x app.py")]), "it rests on app.py:59 in the repository"),
])
def test_each_finding_that_cannot_be_replayed_says_why(made, reason):
    with pytest.raises(NotReplayable, match=reason.replace("(", r"\(")):
        plan(_card(made), made)
    assert shell_version(_card(made), made) is None
    (outcome,) = replay(_card(made), "http://127.0.0.1:9", [made.id])  # nothing is sent for it
    assert outcome.verdict == "not_replayable" and reason in outcome.reason


def test_a_result_json_without_api_auth_says_to_grade_again():
    made = Finding(id="F6", check="ownership.bola", kind="bola_read", severity="critical", message="m",
                   evidence=[_exchange(headers={"Authorization": "Bearer eyJx.y.z"})])
    with pytest.raises(NotReplayable, match="result.json does not say how the test users register and log in"):
        plan(_card(made, api={"resources": []}), made)


# ---------------------------------------------------------------- the command


def test_cli_exits_0_when_all_reproduce_1_when_one_does_not_2_when_it_cannot_run(serve, bola_write_card, tmp_path,
                                                                                   capsys):
    result = tmp_path / "result.json"
    result.write_text(bola_write_card.model_dump_json())
    target = finding(bola_write_card, "bola_write").id
    assert main(["replay", str(result), "--url", serve(tasks_app(write_despite_403=True))]) == 0
    assert f"{target} bola_write: reproduces" in capsys.readouterr().out
    assert main(["replay", str(result), "--url", serve(tasks_app()), "--finding", target]) == 1
    out = capsys.readouterr().out
    assert f"{target} bola_write: does not reproduce: " in out and "step 3 (GET /tasks/" in out
    assert main(["replay", str(tmp_path / "missing.json"), "--url", "http://127.0.0.1:9"]) == 2
    assert "not a readable result.json" in capsys.readouterr().err
    (tmp_path / "other.json").write_text("{}")
    assert main(["replay", str(tmp_path / "other.json"), "--url", "http://127.0.0.1:9"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1  # what is wrong with it, in one line
    assert main(["replay", str(result), "--url", "http://127.0.0.1:9"]) == 2  # nothing listens on port 9
    err = capsys.readouterr().err
    assert "does not answer" in err and len(err.strip().splitlines()) == 1
    assert main(["replay", str(result), "--url", "http://127.0.0.1:9", "--finding", "F999"]) == 2


def test_an_unknown_code_the_probe_chose_is_sent_as_it_was_and_reproduces_only_on_the_flawed_app(serve):
    card = graded(make_context(serve(shortener_app(unknown_500=True))), "shortener.redirect")
    target = finding(card, "redirect_wrong")
    assert run(plan(card, target), Prober(serve(shortener_app(unknown_500=True)))).verdict == "reproduces"
    fixed = run(plan(card, target), Prober(serve(shortener_app())))
    assert fixed.verdict == "does_not_reproduce", fixed.line()


def words_shortener_app(redirect: bool):
    """Short codes that are plain words (`river`, no digit, not id-shaped); a known code answers 200 with the
    link unless `redirect`."""
    app = FastAPI()
    words = itertools.cycle(["river", "stone", "maple", "cedar"])
    links: dict[str, dict] = {}

    @app.post("/links", status_code=201)
    def create(body: LinkIn):
        code = next(words) + next(words)
        links[code] = {"id": len(links) + 1, "code": code, "url": body.url}
        return links[code]

    @app.get("/{code}")
    def follow(code: str):
        if code not in links:
            raise HTTPException(404, "no such code")
        return RedirectResponse(links[code]["url"], status_code=302) if redirect else links[code]

    return app


def test_a_plain_word_code_made_by_a_create_recorded_elsewhere_is_made_again(serve):
    ctx = make_context(serve(words_shortener_app(redirect=False)))
    card = graded(ctx, "shortener.redirect")
    target = finding(card, "redirect_wrong")
    # the chain keeps only the read; its create is recorded in another check's evidence, as a fuzzer's create is
    create = next(e for e in target.evidence if e.request.method == "POST")
    read_only = target.model_copy(update={"evidence": [e for e in target.evidence if e.request.method != "POST"]})
    check = card.checks[0].model_copy(update={"evidence": [*card.checks[0].evidence, create]})
    card = card.model_copy(update={"findings": [read_only if f.id == target.id else f for f in card.findings],
                                   "checks": [check, *card.checks[1:]]})
    card = Scorecard.model_validate_json(card.model_dump_json())
    target = finding(card, "redirect_wrong")
    code = create.response.body.split('"code":"')[1].split('"')[0]
    assert any(urlsplit(e.request.url).path == f"/{code}" for e in target.evidence), target.evidence
    fresh = run(plan(card, target), Prober(serve(words_shortener_app(redirect=False))))
    assert fresh.verdict == "reproduces", fresh.line()
    fixed = run(plan(card, target), Prober(serve(words_shortener_app(redirect=True))))
    assert fixed.verdict == "does_not_reproduce", fixed.line()


def test_an_api_key_finding_replays_with_fresh_keys_live_and_in_the_shell(serve):
    from ..probes.key_apps import keyed_notes_app

    card = graded(make_context(serve(keyed_notes_app(owner_check=False))), "ownership.bola")
    target = finding(card, "bola_read")
    assert card.api["auth"]["issues_keys"] is True
    assert run(plan(card, target), Prober(serve(keyed_notes_app(owner_check=False)))).verdict == "reproduces"
    assert run(plan(card, target), Prober(serve(keyed_notes_app()))).verdict == "does_not_reproduce"
    base = serve(keyed_notes_app(owner_check=False))
    script = shell_version(card, target, base)
    assert "PASS_A" not in script and "TOKEN_A=$(curl" in script, script
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert '"text"' in done.stdout  # user B's read of A's note answered it
