"""The advanced and capstone rubrics, their params, the manifest lines they read, and the runtime's host mapping
that lets containers reach the grader's webhook receiver. No Docker, no server."""

from __future__ import annotations

import pytest

from portfolio_grader.checks.registry import REGISTRY, import_builtin_checks
from portfolio_grader.models import Manifest
from portfolio_grader.rubric import load_rubric

ADVANCED_KINDS_CHECKS = {"shortener.redirect", "shortener.background_job", "observability.health",
                         "observability.metrics", "observability.logs", "load.latency"}
CAPSTONE_CHECKS = {"tenancy.api_key_revocation", "tenancy.isolation", "webhooks.delivery", "webhooks.signature",
                   "webhooks.retry", "idempotency.keys", "usage.tracking"}


@pytest.mark.parametrize("tier", ["beginner", "intermediate", "advanced", "capstone"])
def test_every_rubric_validates_and_names_only_registered_checks(tier):
    import_builtin_checks()
    rubric = load_rubric(tier)
    assert rubric.criteria and all(c.hint for c in rubric.criteria)
    assert set(rubric.check_ids) <= set(REGISTRY), set(rubric.check_ids) - set(REGISTRY)


def test_the_ladder_includes_each_lower_tier():
    ids = {tier: {c.id for c in load_rubric(tier).criteria} for tier in ("intermediate", "advanced", "capstone")}
    assert ids["intermediate"] < ids["advanced"] < ids["capstone"]
    assert ADVANCED_KINDS_CHECKS <= set(load_rubric("advanced").check_ids)
    assert CAPSTONE_CHECKS <= set(load_rubric("capstone").check_ids)
    assert "redirects" in {c.id for c in load_rubric("advanced").criteria if c.gate}
    gates = {c.id for c in load_rubric("capstone").criteria if c.gate}
    assert {"api-keys", "tenant-isolation", "ownership", "crud-lifecycle"} <= gates and "redirects" not in gates


def test_thresholds_are_rubric_data_passed_to_checks_by_id():
    params = load_rubric("capstone").check_params
    assert params["load.latency"] == {"p95_ms": 500, "max_error_rate": 0.01}
    assert params["webhooks.retry"]["deadline_s"] > params["webhooks.delivery"]["deadline_s"]
    assert params["shortener.redirect"] == {}


def test_a_copied_rubric_can_tighten_a_threshold(tmp_path):
    from portfolio_grader.rubric import rubric_dir

    for name in ("beginner", "intermediate"):
        (tmp_path / f"{name}.yaml").write_text((rubric_dir() / f"{name}.yaml").read_text())
    source = (rubric_dir() / "advanced.yaml").read_text()
    (tmp_path / "strict.yaml").write_text(source.replace("name: advanced", "name: strict").replace(
        "p95_ms: 500", "p95_ms: 100"))
    assert load_rubric(str(tmp_path / "strict.yaml")).check_params["load.latency"]["p95_ms"] == 100


def test_manifest_takes_the_upper_tier_lines():
    manifest = Manifest.model_validate({
        "metrics": "/prom",
        "shortener": {"create": "POST /links", "redirect": "GET /{code}", "stats": "GET /links/{id}/stats"},
        "api_keys": {"create": "POST /keys", "revoke": "DELETE /keys/{id}", "header": "X-API-Key", "prefix": ""},
        "tenants": {"create": "POST /orgs"},
        "webhooks": {"register": "POST /webhooks", "signature_header": "X-Signature", "events": ["a.b"]},
        "idempotency": {"operation": "POST /payments"},
        "usage": "GET /usage",
    })
    assert manifest.webhooks.register_op == "POST /webhooks" and manifest.idempotency.header == "Idempotency-Key"
    with pytest.raises(ValueError):
        Manifest.model_validate({"webhooks": {"regster": "POST /webhooks"}})  # typos are reported


def test_compose_services_built_from_the_repo_reach_the_host_gateway(tmp_path):
    from portfolio_grader.runtime import RuntimeOptions
    from portfolio_grader.runtime.compose_rewrite import rewrite_compose

    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\n")
    doc = {"services": {
        "api": {"build": ".", "ports": ["8000:8000"], "extra_hosts": ["host.docker.internal:10.0.0.1", "db2:1.2.3.4"]},
        "worker": {"build": ".", "command": "python -m worker"},
        "redis": {"image": "redis:7"},
    }}
    plan = rewrite_compose(doc, tmp_path / "docker-compose.yml", tmp_path, RuntimeOptions(run_id="t1"))
    services = plan.doc["services"]
    assert services["api"]["extra_hosts"] == ["db2:1.2.3.4", "host.docker.internal:host-gateway"]
    assert services["worker"]["extra_hosts"] == ["host.docker.internal:host-gateway"]
    assert "extra_hosts" not in services["redis"]
