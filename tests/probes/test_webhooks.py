"""Webhook probes against a real in-process multi-tenant API that delivers to the grader's receiver on
127.0.0.1: delivery, signature and retry, each with its pass and its fail case; plus the receiver itself."""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx
import pytest

from portfolio_grader.webhook_receiver import Delivery, WebhookReceiver, receiver_for
from portfolio_grader.checks.webhooks import verify

from ..conftest import kinds, make_context, run
from .advanced_apps import tenant_app

FAST = {"webhooks.delivery": {"deadline_s": 3}, "webhooks.retry": {"deadline_s": 4}}


def context(serve, **flaws):
    ctx = make_context(serve(tenant_app(**flaws)))
    ctx.check_params = FAST
    return ctx


def test_delivered_signed_and_retried(serve):
    ctx = context(serve)
    delivered = run("webhooks.delivery", ctx)
    assert delivered.status == "pass", delivered
    assert "127.0.0.1" in delivered.summary
    hit = delivered.evidence[-1]
    assert hit.request.url.startswith("http://127.0.0.1:") and "project.created" in hit.request.body
    signed = run("webhooks.signature", ctx)
    assert signed.status == "pass", signed
    assert "`X-Signature` is the HMAC-SHA256 of `" in signed.summary and "grader's own" in signed.summary
    assert signed.evidence[0].curl.startswith("printf %s ") and "openssl dgst -sha256 -hmac" in signed.evidence[0].curl
    retried = run("webhooks.retry", ctx)
    assert retried.status == "pass", retried
    statuses = [e.response.status for e in retried.evidence[1:]]
    assert statuses[:2] == [500, 200]


def test_secret_handed_back_by_the_api_is_used(serve):
    ctx = context(serve, secret_generated=True)
    signed = run("webhooks.signature", ctx)
    assert signed.status == "pass" and "`secret` of the registration answer" in signed.summary


def test_webhook_not_delivered(serve):
    ctx = context(serve, no_delivery=True)
    started = time.monotonic()
    outcome = run("webhooks.delivery", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"webhook_not_delivered"}
    assert 3 <= time.monotonic() - started < 6
    assert all(e.curl for e in outcome.findings[0].evidence)
    assert run("webhooks.signature", ctx).status == "not_evaluated"
    assert run("webhooks.retry", ctx).status == "not_evaluated"


@pytest.mark.parametrize("flaw", ["unsigned", "wrong_signature"])
def test_webhook_unsigned(serve, flaw):
    ctx = context(serve, **{flaw: True})
    assert run("webhooks.delivery", ctx).status == "pass"
    outcome = run("webhooks.signature", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"webhook_unsigned"}
    text = outcome.findings[0].message
    assert ("no signature header" in text) if flaw == "unsigned" else ("does not verify" in text)


def test_webhook_no_retry(serve):
    ctx = context(serve, no_retry=True)
    outcome = run("webhooks.retry", ctx)
    assert outcome.status == "fail" and kinds(outcome) == {"webhook_no_retry"}
    assert "answered 500" in outcome.findings[0].message
    assert outcome.findings[0].evidence[1].response.status == 500


def test_no_webhooks_is_not_evaluated_with_the_manifest_lines(serve):
    from .auth_apps import tasks_app

    ctx = make_context(serve(tasks_app()))
    outcome = run("webhooks.delivery", ctx)
    assert outcome.status == "not_evaluated" and "webhooks:" in outcome.manifest_hint


def test_remote_deployment_cannot_reach_the_receiver():
    receiver, why = receiver_for("external", "https://api.example.com")
    assert receiver is None and "cannot reach" in why


# ---------------------------------------------------------------- the receiver and the verifier


def test_receiver_records_deliveries_and_fails_on_demand():
    with WebhookReceiver() as receiver:
        receiver.fail_next(1)
        with httpx.Client(trust_env=False) as client:
            first = client.post(receiver.url("/x"), content=b'{"a": 1}', headers={"X-Test": "1"})
            second = client.post(receiver.url("/x"), content=b'{"a": 1}')
            stranger = client.post(receiver.url().rsplit("/", 1)[0] + "/not-the-token", content=b"{}")
        assert (first.status_code, second.status_code, stranger.status_code) == (500, 200, 404)
        got = receiver.wait(lambda ds: len(ds) >= 2, timeout=1)
        assert [d.answered for d in got] == [500, 200] and got[0].header("x-test") == "1"
        assert got[0].body == b'{"a": 1}'


def test_receiver_for_a_container_uses_the_host_gateway_name():
    receiver, why = receiver_for("docker", "http://127.0.0.1:5555")
    assert receiver is not None and receiver.url_host == "host.docker.internal"
    with receiver:
        assert receiver.url().startswith("http://host.docker.internal:")


@pytest.mark.parametrize("style", ["hex", "prefixed", "stamped", "stripe", "base64"])
def test_verify_accepts_common_signature_styles(style):
    import base64

    secret, body, stamp = "s3cret-for-tests", b'{"event": "x"}', "1700000000"
    digest = hmac.new(secret.encode(), body, hashlib.sha256)
    stamped = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {
        "hex": {"X-Signature": digest.hexdigest()},
        "prefixed": {"X-Hub-Signature-256": "sha256=" + digest.hexdigest()},
        "stamped": {"X-Webhook-Signature": stamped, "X-Webhook-Timestamp": stamp},
        "stripe": {"Stripe-Signature": f"t={stamp},v1={stamped}"},
        "base64": {"X-Signature": base64.b64encode(digest.digest()).decode()},
    }[style]
    delivery = Delivery("POST", "/hooks/t", headers, body, 0.0, 200)
    assert verify(delivery, secret) is not None
    assert verify(delivery, "another-secret") is None
