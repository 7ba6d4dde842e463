"""Webhooks (capstone tier), delivered to a receiver the grader hosts for the probe.

One session, shared by the three checks: register the receiver's URL (with a secret the grader
chooses, or the one the API hands back), trigger an event (create an object), wait for the delivery;
then tell the receiver to answer 500 and trigger another event, and wait for the retry.

- `webhooks.delivery`: the event arrives within the rubric's deadline.
- `webhooks.signature`: a header carries an HMAC of the body (or of `timestamp.body`) with the shared
  secret, hex or base64, optionally `sha256=`-prefixed or Stripe-style `t=...,v1=...`.
- `webhooks.retry`: after a 500 the same event is delivered again within the rubric's retry deadline.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from ..identities import Identity, IdentityError
from ..models import Evidence, Operation, RequestRecord, ResponseRecord
from ..evidence import decode_body
from ..payloads import valid_example
from ..probe import Exchange
from ..webhook_receiver import Delivery, WebhookReceiver, receiver_for
from .objects import find_id
from .operations import (data_resources, fill, first_field, marked_body, named_operation, new_marker, ok,
                         path_params, send, status_text, unwrap)
from .registry import CheckContext, check

DEFAULT_DEADLINE = 10.0
DEFAULT_RETRY_DEADLINE = 30.0
URL_FIELDS = ("url", "target_url", "targetUrl", "endpoint", "callback_url", "callbackUrl", "webhook_url",
              "webhookUrl", "destination", "uri", "href", "address")
SECRET_FIELDS = ("secret", "signing_secret", "signingSecret", "webhook_secret", "webhookSecret", "key", "token")
WAITS = "webhook delivery, then a retry after a 500 (one session shared by the three checks)"
MANIFEST_HINT = ("webhooks:\n"
                 "  register: POST /webhooks        # takes the receiver URL\n"
                 "  url_field: url\n"
                 "  secret_field: secret            # the grader sets it (or reads it from the answer)\n"
                 "  signature_header: X-Signature   # HMAC-SHA256 of the body with the secret\n"
                 "  events: [project.created]       # when the registration needs event names\n"
                 "  trigger: POST /projects         # an operation whose success emits an event")
_DIGESTS = (("sha256", hashlib.sha256), ("sha1", hashlib.sha1), ("sha512", hashlib.sha512))


@dataclass
class Session:
    """What the webhook probe did and saw."""

    skipped: tuple[str, str | None] | None = None  # (reason, manifest hint)
    how: str = ""
    register: Exchange | None = None
    secret: str | None = None
    secret_from: str = ""
    receiver_url: str = ""
    trigger: Exchange | None = None
    delivered: list[Delivery] = field(default_factory=list)
    waited: float = 0.0
    retry_trigger: Exchange | None = None
    retried: list[Delivery] = field(default_factory=list)  # deliveries of the retry event, the first answered 500
    retry_waited: float = 0.0
    retry_skipped: str | None = None
    deadline: float = DEFAULT_DEADLINE
    retry_deadline: float = DEFAULT_RETRY_DEADLINE


def _url_field(op: Operation) -> str | None:
    props = (op.request_schema or {}).get("properties") or {}
    return next((p for p in URL_FIELDS if p in props), None) or next(
        (p for p, s in props.items() if (s or {}).get("format") in ("uri", "url")), None)


def _register_op(ctx: CheckContext) -> Operation | None:
    named = ctx.facts.manifest.webhooks if ctx.facts.manifest else None
    if named and named.register_op:
        return named_operation(ctx, named.register_op)
    ops = [op for op in ctx.api.operations if op.method == "POST" and re.search(r"webhook|hook|subscription", op.path, re.I)
           and (_url_field(op) or op.request_schema is None)]
    return min(ops, key=lambda op: len(op.path)) if ops else None


def _trigger_op(ctx: CheckContext, register: Operation) -> Operation | None:
    named = ctx.facts.manifest.webhooks if ctx.facts.manifest else None
    if named and named.trigger:
        return named_operation(ctx, named.trigger)
    return next((r.create for r in data_resources(ctx) if r.create.path != register.path), None)


def _user(ctx: CheckContext) -> Identity | None:
    """A user of its own (the third), so fuzzing that registered junk webhooks for the others is not in the way."""
    if ctx.api.auth is None:
        return None
    for count in (3, 1):
        try:
            return ctx.identities(count)[-1]
        except IdentityError:
            continue
    return None


def _registration_body(ctx: CheckContext, op: Operation, url: str, secret: str) -> tuple[dict, bool]:
    """(body, whether the grader's secret is in it)."""
    named = ctx.facts.manifest.webhooks if ctx.facts.manifest else None
    schema = op.request_schema or {}
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    body = valid_example(schema) if schema else {}
    body = body if isinstance(body, dict) else {}
    body[(named.url_field if named and named.url_field else None) or _url_field(op) or "url"] = url
    secret_field = (named.secret_field if named and named.secret_field else None) or next(
        (p for p in SECRET_FIELDS if p in props and not (props[p] or {}).get("readOnly")), None)
    if secret_field and (secret_field in props or named):
        body[secret_field] = secret
    for name, sub in props.items():
        if re.fullmatch(r"events?|event_types?|eventTypes|topics?|types?", name):
            if named and named.events:
                body[name] = list(named.events) if (sub or {}).get("type") == "array" else named.events[0]
            elif name not in required:
                body.pop(name, None)  # optional: let the API subscribe to everything
            else:
                items = (sub or {}).get("items") or {}
                if (sub or {}).get("type") == "array" and isinstance(items.get("enum"), list):
                    body[name] = list(items["enum"])
                elif (sub or {}).get("type") == "array":
                    body[name] = ["*"]
    return body, bool(secret_field and secret_field in body)


def session(ctx: CheckContext) -> Session:
    return ctx.memo("webhooks.session", lambda: _run(ctx))


def _run(ctx: CheckContext) -> Session:
    out = Session(deadline=float(ctx.check_params.get("webhooks.delivery", {}).get("deadline_s", DEFAULT_DEADLINE)),
                  retry_deadline=float(ctx.check_params.get("webhooks.retry", {}).get("deadline_s",
                                                                                         DEFAULT_RETRY_DEADLINE)))
    register = _register_op(ctx)
    if register is None:
        out.skipped = ("no webhook registration operation was found (a POST on a path like /webhooks taking a URL)",
                       MANIFEST_HINT)
        return out
    trigger = _trigger_op(ctx, register)
    if trigger is None:
        out.skipped = ("no operation to trigger an event with was found (a create on a data collection)", MANIFEST_HINT)
        return out
    receiver, how = receiver_for(ctx.service.kind, ctx.service.base_url)
    if receiver is None:
        out.skipped = (how, None)
        return out
    out.how = how
    user = _user(ctx)
    headers = user.headers(ctx.api.auth) if user else {}
    with receiver:
        out.receiver_url = receiver.url()
        secret = "pg-whsec-" + secrets.token_hex(16)
        body, sent_secret = _registration_body(ctx, register, out.receiver_url, secret)
        out.register = send(ctx, register.method, register.path, json=body, headers=headers)
        if not ok(out.register):
            out.skipped = (f"registering the receiver with {register.label} answered {status_text(out.register)}: "
                           f"{out.register.text[:200]}", MANIFEST_HINT)
            return out
        answered = first_field(out.register.json(), SECRET_FIELDS)
        if answered and answered[1] != secret:
            out.secret, out.secret_from = answered[1], f"`{answered[0]}` of the registration answer"
        elif sent_secret:
            out.secret, out.secret_from = secret, "the grader's own, sent at registration"
        hook_id = find_id(unwrap(out.register.json()), "id")
        try:
            _deliver(ctx, out, receiver, trigger, headers)
            if out.delivered:
                _retry(ctx, out, receiver, trigger, headers)
            else:
                out.retry_skipped = "no delivery arrived at all, so a retry cannot be observed"
        finally:
            _unregister(ctx, register, hook_id, headers)
    return out


def _fire(ctx: CheckContext, trigger: Operation, headers: dict[str, str], marker: str) -> Exchange:
    values = [1] * len(path_params(trigger.path))
    return send(ctx, trigger.method, fill(trigger.path, *values), headers=headers,
                json=marked_body(trigger.request_schema, marker))


def _about(deliveries: list[Delivery], marker: str, trigger: Exchange | None = None) -> list[Delivery]:
    """The deliveries of the grader's event: those carrying its marker, else the id of the object the trigger made
    (the payload may hold only ids); all of them when none carries either."""
    return _of_event(deliveries, marker, trigger) or deliveries


def _of_event(deliveries: list[Delivery], marker: str, trigger: Exchange | None) -> list[Delivery]:
    marked = [d for d in deliveries if marker in d.text]
    made = find_id(unwrap(trigger.json()), "id") if trigger is not None and ok(trigger) else None
    if marked or made is None:
        return marked
    keys = _id_keys(trigger)
    return [d for d in deliveries if _names(_json(d.text), keys, made)]


def _id_keys(trigger: Exchange) -> set[str]:
    """The keys an event payload names the trigger's object by: `id`, `object_id`, `project_id` for POST
    /projects — not `org_id` or `attempt`, whose small numbers an unrelated event may share."""
    from urllib.parse import urlsplit

    segment = next((s for s in reversed(urlsplit(trigger.url).path.split("/")) if s and "{" not in s), "")
    singular = re.sub(r"(?<=[^s])s$", "", segment.lower().replace("-", "_"))
    names = {"object", "resource", "entity", singular}
    return {"id"} | {f"{n}_id" for n in names} | {f"{n}id" for n in names}


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _names(value: Any, keys: set[str], wanted: Any) -> bool:
    """A payload names `wanted` at one of `keys` (compared without case), at any depth."""
    if isinstance(value, list):
        return any(_names(v, keys, wanted) for v in value)
    if not isinstance(value, dict):
        return False
    return any((k.lower() in keys and not isinstance(v, (dict, list, bool)) and str(v) == str(wanted))
               or _names(v, keys, wanted) for k, v in value.items())


def _retried(deliveries: list[Delivery], marker: str, trigger: Exchange | None) -> list[Delivery]:
    """The deliveries of the retry event. The other checks run meanwhile (webhooks wait in the side lane), so
    when no delivery names the event, only repeats of the first one's exact body count: any later event of the
    API must not pass for a retry."""
    named = _of_event(deliveries, marker, trigger)
    if named or not deliveries:
        return named
    return [d for d in deliveries if d.body == deliveries[0].body]


def _deliver(ctx: CheckContext, out: Session, receiver: WebhookReceiver, trigger: Operation,
             headers: dict[str, str]) -> None:
    marker = new_marker(ctx, "event")
    since = time.monotonic()
    out.trigger = _fire(ctx, trigger, headers, marker)
    if not ok(out.trigger):
        return
    got = receiver.wait(lambda ds: bool(ds), out.deadline, since)
    out.waited = time.monotonic() - since
    out.delivered = _about(got, marker, out.trigger)


def _retry(ctx: CheckContext, out: Session, receiver: WebhookReceiver, trigger: Operation,
           headers: dict[str, str]) -> None:
    time.sleep(0.5)  # let deliveries of the first event settle
    marker = new_marker(ctx, "retry")
    receiver.fail_next(1)
    since = time.monotonic()
    out.retry_trigger = _fire(ctx, trigger, headers, marker)
    if not ok(out.retry_trigger):
        out.retry_skipped = f"the second trigger answered {status_text(out.retry_trigger)}"
        return
    got = receiver.wait(lambda ds: len(_retried(ds, marker, out.retry_trigger)) >= 2, out.retry_deadline, since)
    out.retry_waited = time.monotonic() - since
    out.retried = _retried(got, marker, out.retry_trigger)
    receiver.fail_next(0)


def _unregister(ctx: CheckContext, register: Operation, hook_id: Any, headers: dict[str, str]) -> None:
    if hook_id is None:
        return
    delete = next((op for op in ctx.api.operations if op.method == "DELETE"
                   and re.fullmatch(re.escape(register.path.rstrip("/")) + r"/\{[^}/]+\}/?", op.path)), None)
    if delete is not None:
        send(ctx, "DELETE", fill(delete.path, hook_id), headers=headers).source = "cleanup"


def delivery_evidence(delivery: Delivery, url: str, note: str, command: str | None = None) -> Evidence:
    body = delivery.text
    return Evidence(
        request=RequestRecord(method=delivery.method, url=url, headers=dict(delivery.headers),
                              body=decode_body(body)),
        response=ResponseRecord(status=delivery.answered, headers={"Content-Type": "application/json"}),
        curl=command or (f"curl -sS -i -X {delivery.method} {shlex.quote(url)} "
                         + " ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in delivery.headers.items()
                                    if k.lower() not in ("host", "content-length", "connection", "accept-encoding"))
                         + f" --data-raw {shlex.quote(body[:4000])}"),
        note=note)


def _skip(ctx: CheckContext, s: Session):
    reason, hint = s.skipped
    return ctx.skip(reason, hint)


_DELIVERY_HINT = ("Emit an event when something happens (a `project.created` row in an outbox table, or a job on a "
                  "queue) and let a worker POST it as JSON to every webhook URL the tenant registered, with a short "
                  "timeout. In a container, `localhost` is the container itself: the receiver's URL is used as "
                  "given.")


@check("webhooks.delivery", area="webhooks", title="Registered webhooks receive events within a deadline",
       needs=("service", "spec"), order=20, waits=WAITS,
       params={"deadline_s": float})
def delivery(ctx: CheckContext):
    s = session(ctx)
    if s.skipped:
        return _skip(ctx, s)
    evidence = [s.register.evidence(f"register the grader's receiver ({s.how})")]
    if not ok(s.trigger):
        return ctx.skip(f"the trigger {s.trigger.method} answered {status_text(s.trigger)}, so no event was emitted",
                        MANIFEST_HINT)
    evidence.append(s.trigger.evidence("trigger an event"))
    if s.delivered:
        first = s.delivered[0]
        evidence.append(delivery_evidence(first, s.receiver_url, f"delivered {s.waited:.1f} s after the trigger"))
        return ctx.verdict(f"an event reached the receiver {s.waited:.1f} s after the trigger "
                           f"(deadline {s.deadline:g} s; {s.how})", evidence=evidence)
    finding = ctx.fail("webhook_not_delivered", "high",
                       f"No webhook delivery reached the grader's receiver within {s.deadline:g} s of "
                       f"{_label(s.trigger)} ({s.how}).", operation=_label(s.register), evidence=evidence, hint=_DELIVERY_HINT)
    return ctx.verdict(finding.message, [finding], evidence)


def _label(exchange: Exchange | None) -> str | None:
    if exchange is None:
        return None
    from urllib.parse import urlsplit

    return f"{exchange.method} {urlsplit(exchange.url).path}"


# ---------------------------------------------------------------- signatures


def _secrets(secret: str) -> list[bytes]:
    keys = [secret.encode()]
    if secret.startswith("whsec_"):  # Standard Webhooks / Svix: base64 after the prefix
        try:
            keys.append(base64.b64decode(secret[6:]))
        except ValueError:
            pass
    return keys


def _encodings(digest: bytes) -> set[str]:
    return {digest.hex(), base64.b64encode(digest).decode(), base64.urlsafe_b64encode(digest).decode().rstrip("="),
            base64.b64encode(digest).decode().rstrip("=")}


def signature_headers(delivery: Delivery, named: str | None = None) -> dict[str, str]:
    return {k: v for k, v in delivery.headers.items()
            if (named and k.lower() == named.lower()) or re.search(r"signature|x-hub-signature|x-hmac", k, re.I)}


def verify(delivery: Delivery, secret: str, named: str | None = None) -> tuple[str, str] | None:
    """(header, how) of a signature header that verifies with the secret; None when none does."""
    body = delivery.body
    stamps = [v for k, v in delivery.headers.items() if re.search(r"timestamp", k, re.I)]
    ids = [v for k, v in delivery.headers.items() if re.fullmatch(r"(webhook|svix)-id", k, re.I)]
    for header, value in signature_headers(delivery, named).items():
        candidates, payloads = [], [(body, "the body")]
        payloads += [(f"{t}.".encode() + body, f"`{t}.` + the body") for t in stamps]
        payloads += [(t.encode() + body, f"`{t}` + the body") for t in stamps]
        payloads += [(f"{i}.{t}.".encode() + body, "`id.timestamp.` + the body") for i in ids for t in stamps]
        parts = dict(p.split("=", 1) for p in value.split(",") if "=" in p and "t=" in value)
        if parts.get("t"):  # Stripe: t=...,v1=...
            payloads.append((f"{parts['t']}.".encode() + body, "`t.` + the body (Stripe style)"))
            candidates += [v for k, v in parts.items() if k.startswith("v")]
        for piece in re.split(r"[ ,]+", value):
            candidates.append(re.sub(r"^(sha\d+|v\d+)[=,]", "", piece.strip()))
        candidates.append(re.sub(r"^(sha\d+|v\d+)[=,]", "", value.strip()))
        for key in _secrets(secret):
            for payload, what in payloads:
                for name, algorithm in _DIGESTS:
                    expected = _encodings(hmac.new(key, payload, algorithm).digest())
                    if any(hmac.compare_digest(c, e) for c in candidates for e in expected if len(c) == len(e)):
                        return header, f"HMAC-{name.upper()} of {what}"
    return None


def _openssl(delivery: Delivery, secret: str) -> str:
    body = delivery.text[:4000]
    return f"printf %s {shlex.quote(body)} | openssl dgst -sha256 -hmac {shlex.quote(secret)}"


_SIGN_HINT = ("Sign every delivery: `sig = hmac.new(secret.encode(), body_bytes, hashlib.sha256).hexdigest()` (Node: "
              "`crypto.createHmac(\"sha256\", secret).update(body).digest(\"hex\")`) over the exact bytes sent, in a "
              "header such as `X-Signature: sha256=<hex>`; add a timestamp header and sign `timestamp.body` so "
              "receivers can refuse replays. Give each webhook its own secret, shown once at registration.")


@check("webhooks.signature", area="webhooks", title="Webhook deliveries carry an HMAC signature of the body",
       needs=("service", "spec"), order=21, waits=WAITS)
def signature(ctx: CheckContext):
    s = session(ctx)
    if s.skipped:
        return _skip(ctx, s)
    if not s.delivered:
        return ctx.skip("no delivery arrived, so no signature can be checked (see webhooks.delivery)")
    named = ctx.facts.manifest.webhooks.signature_header if ctx.facts.manifest and ctx.facts.manifest.webhooks else None
    first = s.delivered[0]
    headers = signature_headers(first, named)
    if not headers:
        finding = ctx.fail("webhook_unsigned", "high",
                           "The webhook delivery carries no signature header: a receiver cannot tell it from a forged "
                           f"request (headers: {', '.join(sorted(first.headers))}).", operation=_label(s.register),
                           evidence=[delivery_evidence(first, s.receiver_url, "no signature header")], hint=_SIGN_HINT)
        return ctx.verdict(finding.message, [finding])
    if s.secret is None:
        return ctx.skip(f"the delivery has {', '.join(headers)}, but the grader knows no secret to verify it with "
                        "(none in the registration body or answer)", MANIFEST_HINT)
    proof = verify(first, s.secret, named)
    command = _openssl(first, s.secret)
    if proof:
        header, how = proof
        return ctx.verdict(f"`{header}` is the {how} with the secret ({s.secret_from})",
                           evidence=[delivery_evidence(first, s.receiver_url, f"{header}: {how}", command)])
    finding = ctx.fail("webhook_unsigned", "high",
                       f"The signature header ({', '.join(f'{k}: {v[:40]}' for k, v in headers.items())}) does not "
                       f"verify as an HMAC (SHA-256/1/512, hex or base64) of the body or of `timestamp.body` with the "
                       f"secret ({s.secret_from}).", operation=_label(s.register),
                       evidence=[delivery_evidence(first, s.receiver_url, "the signature does not verify", command)],
                       hint=_SIGN_HINT)
    return ctx.verdict(finding.message, [finding])


_RETRY_HINT = ("Treat any non-2xx answer or timeout as a failed attempt and retry it later with exponential backoff "
               "(1 s, 2 s, 4s ... up to a few hours, then give up and mark the endpoint failing): keep deliveries in "
               "a table or queue with `attempts` and `next_attempt_at`, not in the request that emitted the event.")


@check("webhooks.retry", area="webhooks", title="A failed webhook delivery (500) is retried",
       needs=("service", "spec"), order=22, waits=WAITS,
       params={"deadline_s": float})
def retry(ctx: CheckContext):
    s = session(ctx)
    if s.skipped:
        return _skip(ctx, s)
    if s.retry_skipped:
        return ctx.skip(s.retry_skipped)
    evidence = [s.retry_trigger.evidence("trigger a second event; the receiver answers its first delivery 500")]
    evidence += [delivery_evidence(d, s.receiver_url, f"attempt {i + 1}: the receiver answered {d.answered}")
                 for i, d in enumerate(s.retried[:3])]
    if len(s.retried) >= 2 and s.retried[0].answered >= 500:
        gap = s.retried[1].received_at - s.retried[0].received_at
        return ctx.verdict(f"after a 500 the event was delivered again {gap:.1f} s later", evidence=evidence)
    seen = (f"{len(s.retried)} delivery of it arrived (answered {s.retried[0].answered})" if s.retried
            else "no delivery of it arrived at all")
    finding = ctx.fail("webhook_no_retry", "medium",
                       f"The receiver answered 500 to an event's delivery and waited {s.retry_deadline:g} s: {seen}, "
                       "no retry.", operation=_label(s.register), evidence=evidence, hint=_RETRY_HINT)
    return ctx.verdict(finding.message, [finding], evidence)

