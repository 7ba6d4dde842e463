"""Probe tests of the authentication checks (auth.required, auth.jwt_*) against the real in-process task API."""

from __future__ import annotations

import time

import jwt
import pytest
from .auth_apps import tasks_app
from ..conftest import kinds, make_context, run

from portfolio_grader.checks.jwt_codec import committed_secrets, crack, parse_jwt, tamper_signature, unsigned, wordlist
from portfolio_grader.models import RepoFacts

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

JWT_CHECKS = ("auth.required", "auth.jwt_forgery", "auth.jwt_secret", "auth.jwt_lifetime")


def _forged_token(evidence) -> str:
    return evidence.request.headers["Authorization"].removeprefix("Bearer ")


def test_correct_api_passes_every_auth_check_with_evidence(serve):
    ctx = make_context(serve(tasks_app()))
    for check_id in JWT_CHECKS:
        outcome = run(check_id, ctx)
        assert outcome.status == "pass", (check_id, outcome)
        assert outcome.evidence, f"{check_id} passed without evidence"
    forgery = run("auth.jwt_forgery", ctx)
    assert forgery.summary.startswith("7/7 forged tokens refused on GET /users/me")
    assert [e.response.status for e in forgery.evidence[:2]] == [200, 401]  # genuine accepted, garbage refused
    assert "4231 candidates tried" in run("auth.jwt_secret", ctx).summary
    lifetime = run("auth.jwt_lifetime", ctx)
    assert "30 minutes" in lifetime.summary
    assert "the signing secret is unknown (not in the wordlist)" in lifetime.reason


def test_alg_none_token_accepted_is_critical(serve):
    outcome = run("auth.jwt_forgery", make_context(serve(tasks_app(alg_none=True))))
    assert outcome.status == "fail" and kinds(outcome) == {"jwt_alg_none_accepted"}
    (finding,) = outcome.findings
    assert finding.severity == "critical" and "`none`" in finding.message
    forged = _forged_token(finding.evidence[0])
    assert forged.endswith(".") and jwt.get_unverified_header(forged)["alg"] == "none"
    assert finding.evidence[0].response.status == 200 and "Bearer " + forged in finding.evidence[0].curl
    assert "algorithms=[\"HS256\"]" in finding.hint and "jwt.verify" in finding.hint


def test_unverified_signature_lets_a_payload_edit_become_user_b(serve):
    ctx = make_context(serve(tasks_app(no_signature_check=True)))
    outcome = run("auth.jwt_forgery", ctx)
    assert {"jwt_signature_not_verified", "jwt_alg_none_accepted"} <= kinds(outcome)
    finding = next(f for f in outcome.findings if f.kind == "jwt_signature_not_verified")
    user_b = ctx.identities(2)[1]
    assert "signature stripped" in finding.message and "signature edited" in finding.message
    assert f"the response is user B's ({user_b.login_value})" in finding.message
    tampered = next(e for e in finding.evidence if "payload edited" in (e.note or ""))
    assert user_b.login_value in tampered.response.body


def test_weak_secret_is_cracked_and_a_forged_token_is_accepted(serve):
    ctx = make_context(serve(tasks_app(weak_secret=True)))
    outcome = run("auth.jwt_secret", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"jwt_weak_secret"}
    (finding,) = outcome.findings
    assert finding.severity == "critical"
    assert "`se***`" in finding.message and "bundled wordlist" in finding.message
    assert "`secret`" not in finding.message and "`secret`" not in str(finding.evidence)
    proof = finding.evidence[0]
    assert proof.request.method == "GET" and proof.request.url.endswith("/users/me") and proof.response.status == 200
    forged, genuine = _forged_token(proof), ctx.identities(1)[0].token
    assert forged != genuine and jwt.decode(forged, "secret", algorithms=["HS256"])["sub"] == "1"


def test_weak_secret_app_still_refuses_expired_tokens(serve):
    ctx = make_context(serve(tasks_app(weak_secret=True)))
    outcome = run("auth.jwt_lifetime", ctx)
    assert outcome.status == "pass", outcome
    assert "expired and not-yet-valid tokens (signed with the guessed secret) are refused" in outcome.summary
    refused = [e for e in outcome.evidence if e.response is not None and e.note != "the login that issued the token"]
    assert refused and {e.response.status for e in refused} == {401}
    claims = jwt.decode(_forged_token(refused[0]), "secret", algorithms=["HS256"], options={"verify_exp": False})
    assert claims["exp"] < time.time()


def test_expired_token_accepted_when_exp_is_not_checked(serve):
    outcome = run("auth.jwt_lifetime", make_context(serve(tasks_app(weak_secret=True, expired_ok=True))))
    assert outcome.status == "fail" and kinds(outcome) == {"jwt_expired_accepted"}
    (finding,) = outcome.findings
    assert finding.severity == "high" and "`exp` one hour in the past" in finding.message
    assert "`nbf` one hour in the future" in finding.message
    assert finding.evidence[0].response.status == 200


def test_token_without_exp_is_reported(serve):
    outcome = run("auth.jwt_lifetime", make_context(serve(tasks_app(no_exp=True))))
    assert outcome.status == "fail" and kinds(outcome) == {"jwt_no_expiry"}
    assert outcome.findings[0].severity == "medium" and "expiresIn" in outcome.findings[0].hint


def test_secret_committed_in_the_repo_is_found_there(serve, tmp_path):
    secret = "tasks-api-dev-7f3a9c-not-in-any-wordlist"
    assert secret not in wordlist()
    (tmp_path / ".env").write_text(f"# local settings\nDATABASE_URL=sqlite:///app.db\nJWT_SECRET={secret}\n")
    ctx = make_context(serve(tasks_app(jwt_secret=secret)), facts=RepoFacts(root=tmp_path))
    outcome = run("auth.jwt_secret", ctx)
    assert kinds(outcome) == {"jwt_weak_secret"}
    (finding,) = outcome.findings
    assert "`ta***` (committed in .env:3)" in finding.message and secret not in finding.message
    assert finding.evidence[0].response.status == 200
    excerpt = next(e for e in finding.evidence if e.file == ".env:3")
    assert excerpt.excerpt == "JWT_SECRET=ta***"
    # the cracked secret is shared: the expiry probe can now forge tokens too
    assert "refused" in run("auth.jwt_lifetime", ctx).summary


def test_operation_declared_secured_but_open_is_auth_missing(serve):
    outcome = run("auth.required", make_context(serve(tasks_app(open_list=True))))
    assert outcome.status == "fail" and kinds(outcome) == {"auth_missing"}
    (finding,) = outcome.findings
    assert finding.operation == "GET /tasks" and finding.severity == "high"
    assert [e.response.status for e in finding.evidence] == [200, 200]
    assert "Authorization" not in finding.evidence[0].request.headers
    assert finding.evidence[1].request.headers["Authorization"] == "Bearer not-a-real-token"
    assert "OWASP API2" in finding.hint
    assert outcome.score == pytest.approx(6 / 7)


def test_protection_missing_from_the_spec_is_found_with_a_garbage_token(serve):
    app = tasks_app()
    schema = app.openapi()
    for item in schema["paths"].values():
        for op in item.values():
            op.pop("security", None)
    app.openapi_schema = schema
    ctx = make_context(serve(app))
    assert not any(op.security for op in ctx.api.operations)
    outcome = run("auth.required", ctx)
    assert outcome.status == "pass", outcome
    assert "7 undocumented protected operation(s) found by a garbage token" in outcome.summary


def test_operation_whose_spec_makes_credentials_optional_is_not_judged(serve):
    app = tasks_app(open_list=True)
    schema = app.openapi()
    op = schema["paths"]["/tasks"]["get"]
    op["security"] = [{}] + op["security"]  # OpenAPI's "credentials optional"
    app.openapi_schema = schema
    outcome = run("auth.required", make_context(serve(app)))
    assert outcome.status == "pass" and outcome.summary.startswith("6/6 "), outcome


def test_item_paths_use_the_graders_own_object(serve):
    ctx = make_context(serve(tasks_app()))
    run("auth.required", ctx)
    own = {e.url.rsplit("/", 1)[-1] for e in ctx.prober.exchanges if e.method == "DELETE"}
    created = [e.json()["id"] for e in ctx.prober.exchanges if e.method == "POST" and e.status == 201]
    assert own == {str(created[0])}


def test_api_without_security_or_login_is_not_evaluated(serve):
    from .apps import good_books_app

    outcome = run("auth.required", make_context(serve(good_books_app())))
    assert outcome.status == "not_evaluated" and "declares no security" in outcome.reason


def test_offline_primitives():
    token = jwt.encode({"sub": "7", "exp": 2_000_000_000}, "changeme", algorithm="HS384")
    parsed = parse_jwt(token)
    started = time.perf_counter()
    result = crack(parsed)
    assert result.key == b"changeme" and result.alg == "HS384" and time.perf_counter() - started < 1
    assert parse_jwt("opaque-session-id") is None and parse_jwt("a.b.c.d.e") is None
    # an edited signature always decodes to different bytes (the last character may carry padding bits only)
    assert parse_jwt(tamper_signature(token)).signature != parsed.signature
    assert unsigned({"sub": "1"}, "None").endswith(".") and jwt.get_unverified_header(unsigned({}))["alg"] == "none"
    miss = crack(parse_jwt(jwt.encode({"sub": "1"}, "x" * 40, algorithm="HS256")))
    assert miss.key is None and miss.tried == len(wordlist()) > 3000


def test_committed_secret_patterns(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.js").write_text('const JWT_SECRET = "vendored";\n')
    (tmp_path / "src" / "auth.js").write_text(
        'const secret = process.env.JWT_SECRET || "js-fallback";\n'
        'const t = jwt.sign({ id: user.id }, "sign-literal", { expiresIn: "1h" });\n')
    (tmp_path / "settings.py").write_text('SECRET_KEY = "django-insecure-x"\nKEY = os.getenv("JWT", "env-default")\n')
    (tmp_path / "docker-compose.yml").write_text("services:\n  api:\n    environment:\n      - JWT_SECRET=compose\n")
    found = dict(committed_secrets(tmp_path))
    assert found == {"js-fallback": "src/auth.js:1", "sign-literal": "src/auth.js:2",
                     "django-insecure-x": "settings.py:1", "env-default": "settings.py:2",
                     "compose": "docker-compose.yml:4"}
