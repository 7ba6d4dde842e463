"""Unit tests of the core pieces that need no Docker and no server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from portfolio_grader.checks.errors import STACK_TRACE
from portfolio_grader.discover import describe_operations, find_resources, validate_spec
from portfolio_grader.evidence import curl_command, decode_body, make_evidence
from portfolio_grader.fetch import FetchError, fetch, safe_name
from portfolio_grader.inspect import inspect_repo
from portfolio_grader.models import CheckOutcome
from portfolio_grader.payloads import invalid_types, valid_example
from portfolio_grader.probe import Prober, ProbeTargetError
from portfolio_grader.rubric import RubricError, load_rubric, rubric_dir
from portfolio_grader.scoring import score

ROOT = Path(__file__).resolve().parents[2]

BOOK_SCHEMA = {
    "type": "object", "required": ["title", "year", "isbn"],
    "properties": {
        "id": {"type": "integer", "readOnly": True},
        "title": {"type": "string", "minLength": 3, "maxLength": 8},
        "year": {"type": "integer", "minimum": 1900, "maximum": 1950},
        "isbn": {"type": "string", "pattern": "^[0-9]{13}$"},
        "email": {"type": "string", "format": "email"},
        "genre": {"type": "string", "enum": ["sf", "crime"]},
        "tags": {"type": "array", "minItems": 2, "items": {"type": "string"}},
        "price": {"type": ["number", "null"], "exclusiveMinimum": 0},
    },
}


def test_valid_example_satisfies_the_schema_and_variants_differ():
    first, second = valid_example(BOOK_SCHEMA), valid_example(BOOK_SCHEMA, variant=1)
    jsonschema.validate(first, BOOK_SCHEMA)
    jsonschema.validate(second, BOOK_SCHEMA)
    assert "id" not in first  # readOnly fields are the server's to set
    assert first["title"] != second["title"] and first["genre"] != second["genre"]


def test_invalid_types_gives_every_field_the_wrong_type():
    wrong = invalid_types(BOOK_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, BOOK_SCHEMA)
    for name, value in wrong.items():
        sub = dict(BOOK_SCHEMA["properties"][name])
        sub.pop("readOnly", None)
        assert not jsonschema.Draft202012Validator(sub).is_valid(value), name


def _outcome(check, status, score_=1.0, findings=()):
    return CheckOutcome(check=check, area="x", status=status, summary=check, score=score_, findings=list(findings),
                        reason="why" if status in ("not_evaluated", "not_applicable") else None)


def test_scoring_partial_credit_gates_and_not_evaluated():
    rubric = load_rubric("beginner")
    outcomes = [_outcome(c, "pass") for c in rubric.check_ids]
    assert score(rubric, outcomes).score == 100
    # one failed check with half credit in a criterion of three checks; the README check could not run
    outcomes = [_outcome(c, "fail", 0.5) if c == "contract.input_validation" else
                _outcome(c, "not_evaluated", 0.0) if c == "repo.readme" else _outcome(c, "pass") for c in rubric.check_ids]
    result = score(rubric, outcomes)
    by_id = {c.id: c for c in result.criteria}
    validation = next(c for c in rubric.criteria if c.id == "input-validation")
    assert len(validation.checks) == 3  # each check an equal share: half of one share is lost
    lost = round(validation.points * 0.5 / 3, 1)
    assert by_id["input-validation"].status == "partial" and by_id["input-validation"].points == validation.points - lost
    assert by_id["readme"].status == "not_evaluated" and by_id["readme"].points == 0 and by_id["readme"].reason == "why"
    # `lost` points lost, 5 not earned; the score is normalised over the rubric's total
    assert result.score == round(100 * (rubric.max_points - lost - 5) / rubric.max_points, 1) and result.passed
    # the README check that could not run is no fix worth points: the report asks for what would let it run
    assert [f.criterion for f in result.top_fixes] == ["input-validation"]


def test_a_when_offered_criterion_leaves_the_grade_only_when_its_checks_find_nothing_to_examine():
    rubric = load_rubric("beginner")
    paging = {"pagination.walk", "pagination.limits", "pagination.filters"}
    assert next(c for c in rubric.criteria if c.id == "pagination").applies == "when_offered"
    # the API pages no list: the criterion is worth 0 of 0 and a perfect API still scores 100
    outcomes = [_outcome(c, "not_applicable", 0.0) if c in paging else _outcome(c, "pass") for c in rubric.check_ids]
    result = score(rubric, outcomes)
    pagination = next(c for c in result.criteria if c.id == "pagination")
    assert (pagination.status, pagination.points, pagination.max_points) == ("not_applicable", 0, 0)
    assert result.score == 100 and "pagination" not in [f.criterion for f in result.top_fixes]
    # it pages, but the walk finds gaps: graded on what applies (filters found nothing to examine)
    outcomes = [_outcome(c, "fail", 0.0) if c == "pagination.walk" else _outcome(c, "not_applicable", 0.0)
                if c == "pagination.filters" else _outcome(c, "pass") for c in rubric.check_ids]
    pagination = next(c for c in score(rubric, outcomes).criteria if c.id == "pagination")
    assert (pagination.status, pagination.points, pagination.max_points) == ("partial", 2.5, 5)
    # the checks could not run (no service): not evaluated, 0 of 5 — not looking is not "not offered"
    outcomes = [_outcome(c, "not_evaluated", 0.0) if c in paging else _outcome(c, "pass") for c in rubric.check_ids]
    result = score(rubric, outcomes)
    assert next(c for c in result.criteria if c.id == "pagination").status == "not_evaluated" and result.score < 100
    # in the intermediate tier pagination always applies: "nothing to page" is not evaluated, never dropped
    intermediate = load_rubric("intermediate")
    outcomes = [_outcome(c, "not_applicable", 0.0) if c in paging | {"pagination.present"} else _outcome(c, "pass")
                for c in intermediate.check_ids]
    pagination = next(c for c in score(intermediate, outcomes).criteria if c.id == "pagination")
    assert (pagination.status, pagination.max_points) == ("not_evaluated", 8)


def test_a_capstone_platform_need_not_shorten_links():
    from portfolio_grader.scoring import ladder

    rubrics = [load_rubric(t) for t in ("beginner", "intermediate", "advanced", "capstone")]
    shortener = {"shortener.redirect", "shortener.background_job"}
    outcomes = [_outcome(c, "not_applicable", 0.0) if c in shortener else _outcome(c, "pass")
                for c in rubrics[-1].check_ids]
    steps = ladder(rubrics, outcomes)
    # the advanced tier (a URL shortener) misses its redirect gate; the capstone tier overrides it
    assert [s.status for s in steps] == ["reached", "reached", "missed", "reached"]
    assert steps[2].missing_gates == [c.title for c in rubrics[2].criteria if c.id == "redirects"]
    capstone = score(rubrics[-1], outcomes)
    assert capstone.score == 100 and capstone.passed
    assert {c.id: c.status for c in capstone.criteria}["redirects"] == "not_applicable"
    # a capstone that does shorten links is graded on them
    broken = [_outcome(c, "fail", 0.0) if c == "shortener.redirect" else _outcome(c, "pass")
              for c in rubrics[-1].check_ids]
    result = score(rubrics[-1], broken)
    assert {c.id: c.status for c in result.criteria}["redirects"] == "fail" and result.score < 100


def test_rubric_overrides_change_single_fields_of_an_included_criterion(tmp_path):
    (tmp_path / "base.yaml").write_text((rubric_dir() / "beginner.yaml").read_text())
    head = "name: mine\nversion: '0.1'\ntitle: t\npass_mark: 50\nincludes: [base]\n"
    (tmp_path / "mine.yaml").write_text(head + "overrides:\n  - {id: crud-lifecycle, gate: false, points: 30}\ncriteria: []\n")
    crud = next(c for c in load_rubric(str(tmp_path / "mine.yaml")).criteria if c.id == "crud-lifecycle")
    original = next(c for c in load_rubric("beginner").criteria if c.id == "crud-lifecycle")
    assert (crud.gate, crud.points, crud.hint) == (False, 30, original.hint)
    (tmp_path / "typo.yaml").write_text(head + "overrides:\n  - {id: crud, gate: false}\ncriteria: []\n")
    with pytest.raises(RubricError, match="no included rubric defines"):
        load_rubric(str(tmp_path / "typo.yaml"))
    (tmp_path / "bad.yaml").write_text(head + "overrides:\n  - {id: crud-lifecycle, applies: sometimes}\ncriteria: []\n")
    with pytest.raises(RubricError, match="applies"):
        load_rubric(str(tmp_path / "bad.yaml"))


def test_a_failed_gate_fails_the_grade_whatever_the_score():
    rubric = load_rubric("beginner")
    outcomes = [_outcome(c, "fail", 0.9) if c == "crud.lifecycle" else _outcome(c, "pass") for c in rubric.check_ids]
    result = score(rubric, outcomes)
    assert result.score > rubric.pass_mark and not result.gates_met and not result.passed


def test_rubric_validation_errors_and_includes(tmp_path):
    (tmp_path / "base.yaml").write_text((rubric_dir() / "beginner.yaml").read_text())
    (tmp_path / "mine.yaml").write_text(
        "name: mine\nversion: '0.1'\ntitle: t\npass_mark: 50\nincludes: [base]\ncriteria:\n"
        "  - {id: extra, title: X, area: repo, checks: [repo.readme], points: 5, hint: h}\n")
    rubric = load_rubric(str(tmp_path / "mine.yaml"))
    assert rubric.criteria[-1].id == "extra" and len(rubric.criteria) == len(load_rubric("beginner").criteria) + 1
    (tmp_path / "bad.yaml").write_text("name: bad\nversion: '1'\ntitle: t\npass_mark: 150\ncriteria: []\n")
    with pytest.raises(RubricError, match="pass_mark"):
        load_rubric(str(tmp_path / "bad.yaml"))
    with pytest.raises(RubricError, match="no rubric"):
        load_rubric("wizard")


def test_a_rubric_with_an_unknown_check_or_param_does_not_load_and_says_where(tmp_path):
    """A bootcamp's typo would leave a criterion unjudged: the rubric is refused, naming file, line and fix."""
    head = "name: mine\nversion: '0.1'\ntitle: t\npass_mark: 50\ncriteria:\n"
    good = "  - {id: ok, title: X, area: performance, checks: [load.latency], points: 5, hint: h,\n" \
           "     params: {p95_ms: 300, max_error_rate: 0.02}}\n"
    (tmp_path / "good.yaml").write_text(head + good)
    assert load_rubric(str(tmp_path / "good.yaml")).check_params["load.latency"] == {"p95_ms": 300,
                                                                                   "max_error_rate": 0.02}
    cases = {
        "  - {id: typo, title: X, area: repo, checks: [repo.readmee], points: 5, hint: h}\n":
            r"bad.yaml:9: criterion 'typo' names the check 'repo.readmee', which this grader does not have "
            r"\(did you mean 'repo.readme'\?\)",
        "  - {id: slow, title: X, area: performance, checks: [load.latency], points: 5, hint: h,\n"
        "     params: {p95: 300}}\n":
            r"bad.yaml:9: criterion 'slow': param 'p95' is read by none of its checks \(load.latency read "
            r"max_error_rate, p95_ms\)",
        "  - {id: late, title: X, area: usage, checks: [usage.tracking], points: 5, hint: h,\n"
        "     params: {deadline_s: soon}}\n":
            r"bad.yaml:9: criterion 'late': param 'deadline_s' must be a number, not 'soon'",
    }
    for entry, message in cases.items():
        (tmp_path / "bad.yaml").write_text(head + good + "\n" + entry)
        with pytest.raises(RubricError, match=message):
            load_rubric(str(tmp_path / "bad.yaml"))


def test_every_check_that_reads_rubric_params_declares_them():
    import inspect

    from portfolio_grader.checks.registry import REGISTRY, import_builtin_checks

    import_builtin_checks()
    readers = [spec for spec in REGISTRY.values() if "ctx.params()" in inspect.getsource(spec.func)]
    assert readers and all(spec.params for spec in readers), [s.id for s in readers if not s.params]


def test_every_bundled_rubric_names_only_registered_checks():
    from portfolio_grader.checks.registry import REGISTRY, import_builtin_checks
    from portfolio_grader.rubric import available

    import_builtin_checks()
    for name in available():
        missing = set(load_rubric(name).check_ids) - set(REGISTRY)
        assert not missing, (name, missing)


def test_curl_lines_are_shell_safe():
    hostile = "x'; touch /tmp/pwned-by-curl; echo '"
    line = curl_command("POST", "http://127.0.0.1:1/a?q=1&r=2", {"X-Test": hostile}, json.dumps({"t": hostile}))
    out = subprocess.run(["bash", "-c", f"set -- {line[len('curl '):]}; printf '%s\\n' \"$@\""],
                         capture_output=True, text=True).stdout.splitlines()
    assert out[out.index("-H") + 1] == f"X-Test: {hostile}"
    assert out[-1] == json.dumps({"t": hostile}) and not Path("/tmp/pwned-by-curl").exists()


def test_bodies_are_bounded_and_binary_is_summarised():
    assert decode_body(b"\x00\x01" * 10) == "<20 bytes of binary data>"
    assert decode_body(b"\xff\xfeabc") == "\ufffd\ufffdabc"
    assert len(decode_body("x" * 10_000)) < 2100
    evidence = make_evidence("GET", "http://h/x", {"Authorization": "Bearer s3cret-token"}, None, 200,
                             {"Set-Cookie": "session=abcdefghijklmnopqrstuvwxyz"}, b"token s3cret-token",
                             secrets=["s3cret-token"])
    assert "s3cret-token" not in evidence.model_dump_json()


def test_the_prober_refuses_other_origins():
    prober = Prober("http://127.0.0.1:8000")
    assert prober.url_for("/books/1") == "http://127.0.0.1:8000/books/1"
    for target in ("http://example.com/", "http://127.0.0.1:9000/", "https://127.0.0.1:8000/"):
        with pytest.raises(ProbeTargetError):
            prober.url_for(target)


@pytest.mark.parametrize("body", [
    'Traceback (most recent call last):\n  File "/app/main.py", line 3, in <module>',
    '{"trace": "Traceback (most recent call last):\\n  File \\"/app/x.py\\", line 9, in create"}',
    "TypeError: x is undefined\n    at Object.<anonymous> (/usr/src/app/index.js:12:5)\n    at Module._compile (node:internal/modules/cjs/loader:1256:14)",
    "<pre>Error: boom<br> &nbsp; &nbsp;at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)",
    "\tat com.example.Api.create(Api.java:42)",
])
def test_stack_trace_patterns_match_common_stacks(body):
    assert STACK_TRACE.search(body)


@pytest.mark.parametrize("body", ['{"detail": "Not Found"}', "<h1>Not Found</h1>", '{"error": "title at position 3 is wrong"}'])
def test_stack_trace_patterns_ignore_ordinary_errors(body):
    assert not STACK_TRACE.search(body)


def test_spec_validation_lists_every_error():
    spec = {"openapi": "3.0.3", "info": {"title": "t"}, "paths": {"/a/{id}": {"get": {
        "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "default": "ten"}}],
        "responses": {"200": {"description": "ok"}}}}}}
    messages = " | ".join(i.message for i in validate_spec(spec))
    assert "version" in messages and "is a required property" in messages
    assert "'ten' is not of type 'integer'" in messages


def test_resources_are_found_from_operations():
    spec = json.loads(json.dumps({"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {
        "/api/notes": {"post": {"responses": {"201": {"description": "c", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"note_id": {"type": "integer"}}}}}}}}},
        "/api/notes/{note_id}": {"get": {"responses": {"200": {"description": "ok"}}},
                                 "patch": {"responses": {"200": {"description": "ok"}}}},
        "/api/health": {"get": {"responses": {"200": {"description": "ok"}}}},
    }}))
    (resource,) = find_resources(describe_operations(spec), [])
    assert (resource.collection, resource.id_param, resource.id_field) == ("/api/notes", "note_id", "note_id")
    assert resource.update.method == "PATCH" and resource.delete is None


def test_inspect_reads_a_sample_submission():
    facts = inspect_repo(ROOT / "sample_submissions" / "beginner-bookshelf-fastapi")
    assert facts.stack == "python" and "fastapi" in facts.frameworks
    assert facts.dockerfile == "Dockerfile" and 8000 in facts.exposed_ports
    assert facts.readme and facts.test_paths and facts.ci_configs
    assert any(path == "/books" and method == "POST" for method, path, _ in facts.routes_in_code)


def test_inspect_reports_a_broken_manifest_and_routes_of_each_framework(tmp_path):
    (tmp_path / "portfolio-grader.yaml").write_text("port: 99999\nsurprise: 1\n")
    (tmp_path / "app.py").write_text('bp = Blueprint("r", __name__, url_prefix="/api")\n'
                                     '@bp.route("/items/<int:item_id>", methods=["GET", "DELETE"])\ndef f(): ...\n')
    (tmp_path / "server.js").write_text("router.patch('/users/:id', handler)\n")
    facts = inspect_repo(tmp_path)
    assert facts.manifest is None and "port" in facts.manifest_error and "surprise" in facts.manifest_error
    assert ("DELETE", "/api/items/<int:item_id>", "app.py:2") in facts.routes_in_code
    assert ("PATCH", "/users/:id", "server.js:1") in facts.routes_in_code


def test_a_spec_first_connexion_app_routes_by_operation_id(tmp_path):
    (tmp_path / "app.py").write_text("import connexion\napp = connexion.App(__name__)\napp.add_api('openapi.yml')\n")
    (tmp_path / "views").mkdir()
    (tmp_path / "views" / "books.py").write_text("def helper(): ...\n\n\ndef get_all(): ...\n")
    (tmp_path / "openapi.yml").write_text(
        "openapi: 3.0.1\npaths:\n  /books:\n    get:\n      operationId: views.books.get_all\n"
        "    post:\n      operationId: views.books.add_book\n")
    facts = inspect_repo(tmp_path)
    # get_all is defined; add_book names no function in the repo, so nothing implements it
    assert facts.routes_in_code == [("GET", "/books", "views/books.py:4")]
    (tmp_path / "app.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    assert inspect_repo(tmp_path).routes_in_code == []  # operationIds route nothing without connexion


def test_django_routes_carry_their_include_prefix_and_a_drf_router_serves_its_viewsets_methods(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "urls.py").write_text(
        'urlpatterns = [\n    path("admin/", admin.site.urls),\n    path("api/", include("shop.urls")),\n]\n')
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "urls.py").write_text(
        'router = DefaultRouter()\nrouter.register(r"items", ItemViewSet)\nrouter.register("tags", TagViewSet)\n'
        'urlpatterns = router.urls + [path("stats/", views.stats)]\n')
    (tmp_path / "shop" / "views.py").write_text(
        "class ItemViewSet(viewsets.ModelViewSet): ...\nclass TagViewSet(ReadOnlyModelViewSet): ...\n")
    routes = set(inspect_repo(tmp_path).routes_in_code)
    assert {("POST", "/api/items/", "shop/urls.py:2"), ("DELETE", "/api/items/{pk}/", "shop/urls.py:2"),
            ("GET", "/api/tags/{pk}/", "shop/urls.py:3"), ("*", "/api/stats/", "shop/urls.py:4")} <= routes
    assert not any(m == "POST" and p.startswith("/api/tags") for m, p, _ in routes)  # read-only viewset
    assert not any(p.startswith("/admin") for _, p, _ in routes)  # Django's admin site is not the API


def test_fetch_clones_a_ref_and_records_the_commit(tmp_path):
    repo = tmp_path / "learner repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=l@example.com", "-c", "user.name=L"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "README.md").write_text("v1")
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "one"], check=True)
    subprocess.run(git + ["tag", "v1"], check=True)
    first = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    (repo / "README.md").write_text("v2")
    subprocess.run(git + ["commit", "-qam", "two"], check=True)
    workspace = fetch(repo.as_uri(), ref="v1")
    assert workspace.source.commit == first and (workspace.path / "README.md").read_text() == "v1"
    assert safe_name(repo.as_uri()) == "learner-repo"
    with pytest.raises(FetchError, match="'nope'"):
        fetch(repo.as_uri(), ref="nope")
    with pytest.raises(FetchError, match="no such folder"):
        fetch(str(tmp_path / "missing"))


@pytest.mark.parametrize("spec, prefix", [
    ({"openapi": "3.0.3", "servers": [{"url": "https://api.example.com/api/v1/"}]}, "/api/v1"),
    ({"openapi": "3.0.3", "servers": [{"url": "/v2"}]}, "/v2"),
    ({"openapi": "3.0.3", "servers": [{"url": "https://{env}.example.com/x"}]}, ""),
    ({"openapi": "3.1.0"}, ""),
    ({"swagger": "2.0", "basePath": "/api"}, "/api"),
])
def test_the_spec_mount_point_is_kept_and_its_host_ignored(spec, prefix):
    from portfolio_grader.discover import server_path

    assert server_path(spec) == prefix


def test_evidence_always_has_a_reproduction_command():
    from pydantic import ValidationError

    from portfolio_grader.models import Evidence

    with pytest.raises(ValidationError):
        Evidence(curl="", note="a verdict nobody can reproduce")


def test_the_ladder_reaches_a_tier_only_when_all_its_gates_hold_inherited_ones_included():
    from portfolio_grader.scoring import ladder

    beginner, intermediate = load_rubric("beginner"), load_rubric("intermediate")
    all_pass = [_outcome(c, "pass") for c in intermediate.check_ids]
    assert [s.status for s in ladder([beginner, intermediate], all_pass)] == ["reached", "reached"]

    bola = [_outcome(c, "fail", 0.0) if c == "ownership.bola" else _outcome(c, "pass") for c in intermediate.check_ids]
    steps = ladder([beginner, intermediate], bola)
    assert [s.status for s in steps] == ["reached", "missed"]
    assert steps[1].missing_gates == ["Users cannot read, change, delete or list each other's objects"]

    crud_broken = [_outcome(c, "fail", 0.0) if c == "crud.lifecycle" else _outcome(c, "pass") for c in intermediate.check_ids]
    assert [s.status for s in ladder([beginner, intermediate], crud_broken)] == ["missed", "missed"]

    only_beginner = [_outcome(c, "pass") for c in beginner.check_ids]
    assert [s.status for s in ladder([beginner, intermediate], only_beginner)] == ["reached", "not_graded"]


def test_a_connection_the_server_closed_after_a_500_is_not_mistaken_for_a_dead_api():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - http.server's naming
            crash = self.path == "/crash"
            body = b'{"detail": "boom"}' if crash else b'{"ok": true}'
            self.send_response(500 if crash else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = crash  # closed without `Connection: close`, as uvicorn does after a 500

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        prober = Prober(f"http://127.0.0.1:{server.server_port}")
        assert prober.request("GET", "/crash").status == 500
        after = prober.request("GET", "/fine")
        assert after.status == 200 and after.error is None
    finally:
        server.shutdown()


def test_a_manifest_with_one_wrong_key_keeps_the_others_and_names_the_key_and_its_line():
    from portfolio_grader.manifest import read_manifest

    manifest, problems = read_manifest("tier: intermediate\nresorces: [/tasks]\nport: 99999\nhealth: /ping\n",
                                       "portfolio-grader.yaml")
    assert manifest is not None and (manifest.tier, manifest.health, manifest.port) == ("intermediate", "/ping", None)
    assert len(problems) == 2
    unknown = next(p for p in problems if "`resorces`" in p)
    assert "(line 2)" in unknown and "unknown key" in unknown and "resources" in unknown
    assert any("`port` (line 3) was ignored" in p and "65535" in p for p in problems)


def test_a_manifest_that_is_not_yaml_says_where_and_how_to_quote():
    from portfolio_grader.manifest import read_manifest

    manifest, [problem] = read_manifest("auth:\n  admin_operations: [GET /items/{id}]\n", "portfolio-grader.yaml")
    assert manifest is None and "not valid YAML" in problem and "line 2" in problem and '["GET /items/{id}"]' in problem


def test_refs_are_inlined_however_deep_plain_objects_nest_and_recursion_is_cut():
    """Five objects deep (a-b-c-d-e) keeps its leaf, through a chain of `$ref`s too; a recursive schema (a
    comment's replies are comments) is cut where it refers to itself, not followed forever."""
    def nested(depth: int) -> dict:
        schema: dict = {"type": "string"}
        for name in reversed("abcdefgh"[:depth]):
            schema = {"type": "object", "properties": {name: schema}, "required": [name]}
        return schema

    schemas = {"Deep": nested(8), "Outer": {"type": "object", "properties": {"inner": {"$ref": "#/components/schemas/Mid"}}},
               "Mid": {"type": "object", "properties": {"deep": {"$ref": "#/components/schemas/Deep"}}},
               "Comment": {"type": "object", "properties": {"text": {"type": "string"},
                                                            "replies": {"type": "array",
                                                                        "items": {"$ref": "#/components/schemas/Comment"}}}}}
    ok = {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Outer"}}}}}
    spec = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "components": {"schemas": schemas},
            "paths": {"/deep": {"get": {"responses": ok}},
                      "/comments": {"post": {"requestBody": {"content": {"application/json": {"schema": {
                          "$ref": "#/components/schemas/Comment"}}}}, "responses": {"201": {"description": "made"}}}}}}
    deep, comments = describe_operations(spec)
    leaf = deep.responses["200"]["schema"]["properties"]["inner"]["properties"]["deep"]
    for name in "abcdefgh":
        leaf = leaf["properties"][name]
    assert leaf == {"type": "string"}
    comment = comments.request_schema
    assert comment["properties"]["text"] == {"type": "string"}
    assert comment["properties"]["replies"] == {"type": "array", "items": {}}  # Comment inside Comment is cut
