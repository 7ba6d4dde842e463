"""Capstone probes of API keys, tenant isolation, idempotency keys and usage, against a real in-process
multi-tenant API: each kind with its pass and its fail case."""

from __future__ import annotations

import pytest

from portfolio_grader.models import Manifest, RepoFacts

from ..conftest import kinds, make_context, run
from .advanced_apps import tenant_app


def context(serve, facts=None, **flaws):
    ctx = make_context(serve(tenant_app(**flaws)), facts)
    ctx.check_params = {"usage.tracking": {"deadline_s": 1}}
    return ctx


# ---------------------------------------------------------------- API keys


def test_api_key_lifecycle_passes(serve):
    outcome = run("tenancy.api_key_revocation", context(serve))
    assert outcome.status == "pass", outcome
    assert "POST /api-keys" in outcome.summary and "DELETE /api-keys/{key_id}" in outcome.summary
    assert "`Authorization`" in outcome.summary
    statuses = [e.response.status for e in outcome.evidence]
    assert statuses[:3] == [201, 200, 401] and statuses[-2:] == [204, 401]


def test_revoked_key_that_still_works_is_reported(serve):
    outcome = run("tenancy.api_key_revocation", context(serve, revocation_ignored=True))
    assert outcome.status == "fail" and kinds(outcome) == {"api_key_revocation_ignored"}
    finding = outcome.findings[0]
    assert finding.severity == "critical" and finding.evidence[-1].response.status == 200
    assert finding.evidence[-1].curl.startswith("curl ") and "pk_" in finding.evidence[-1].curl


def test_made_up_key_accepted_is_reported(serve):
    outcome = run("tenancy.api_key_revocation", context(serve, any_key=True))
    assert "auth_missing" in kinds(outcome)


def test_manifest_names_the_key_operations_and_header(serve):
    facts = RepoFacts(manifest=Manifest.model_validate(
        {"api_keys": {"create": "POST /api-keys", "revoke": "DELETE /api-keys/{key_id}", "key_field": "key",
                      "header": "Authorization", "prefix": "Bearer "}}))
    assert run("tenancy.api_key_revocation", context(serve, facts)).status == "pass"


def test_no_api_keys_is_not_evaluated_with_the_manifest_lines(serve):
    from .auth_apps import tasks_app

    outcome = run("tenancy.api_key_revocation", make_context(serve(tasks_app())))
    assert outcome.status == "not_evaluated" and "api_keys:" in outcome.manifest_hint


# ---------------------------------------------------------------- isolation


def test_tenants_are_isolated(serve):
    outcome = run("tenancy.isolation", context(serve))
    assert outcome.status == "pass", outcome
    assert "5/5 attempts refused" in outcome.summary  # read, list, write, delete, revoke A's key


@pytest.mark.parametrize("flaw, operation", [("leak_read", "GET /projects/{project_id}"), ("leak_list", "GET /projects"),
                                             ("leak_write", "PATCH /projects/{project_id}"),
                                             ("leak_delete", "DELETE /projects/{project_id}"),
                                             ("cross_revoke", "DELETE /api-keys/{key_id}")])
def test_cross_tenant_leaks_are_reported(serve, flaw, operation):
    outcome = run("tenancy.isolation", context(serve, **{flaw: True}))
    assert outcome.status == "fail" and kinds(outcome) == {"tenant_isolation_broken"}
    assert [f.operation for f in outcome.findings] == [operation]
    assert outcome.score == 0.0  # critical: no partial credit
    assert all(e.curl for e in outcome.findings[0].evidence)


# ---------------------------------------------------------------- idempotency


def test_idempotency_key_replays_the_first_answer(serve):
    outcome = run("idempotency.keys", context(serve))
    assert outcome.status == "pass", outcome
    assert "one object" in outcome.summary
    assert all("Idempotency-Key" in e.request.headers for e in outcome.evidence)


def test_idempotency_missing(serve):
    outcome = run("idempotency.keys", context(serve, no_idempotency=True))
    assert outcome.status == "fail" and kinds(outcome) == {"idempotency_missing"}
    assert "made a second object" in outcome.findings[0].message


# ---------------------------------------------------------------- usage


def test_usage_reflects_calls(serve):
    outcome = run("usage.tracking", context(serve))
    assert outcome.status == "pass", outcome
    assert "`requests`" in outcome.summary


def test_usage_not_tracked(serve):
    outcome = run("usage.tracking", context(serve, no_usage=True))
    assert outcome.status == "fail" and kinds(outcome) == {"usage_not_tracked"}


def test_usage_not_evaluated_without_an_endpoint(serve):
    from .auth_apps import tasks_app

    outcome = run("usage.tracking", make_context(serve(tasks_app())))
    assert outcome.status == "not_evaluated" and outcome.manifest_hint.startswith("usage:")
