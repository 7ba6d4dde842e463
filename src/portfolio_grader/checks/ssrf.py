"""Server-side request forgery (OWASP API7:2023): an API that fetches a URL its client chose.

`ssrf.client_urls` gives each write operation that takes a URL-like field (format `uri`/`url`, or a name such
as `image_url`, `avatar`, `source`, `callback`) the address of a receiver the grader hosts — on the Docker
bridge gateway or the loopback, an internal address no public client should be able to make the server call —
and waits a few seconds. A request arriving there is the proof: the API fetched a URL the client named, and
would fetch `http://169.254.169.254/` (cloud credentials) or an admin port on its own network just as readily.
Webhook registrations are left out (calling the registered URL is their job; the webhook checks judge them).
No request arriving is a pass only where the API can reach the receiver: containers the grader starts always
can (the sandbox keeps the host reachable), a `--url` deployment elsewhere cannot, so it is not evaluated.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

from ..models import Evidence, Operation, RequestRecord, ResponseRecord
from ..payloads import valid_example
from ..webhook_receiver import receiver_for
from .operations import ok, send, status_text
from .registry import CheckContext, check

URL_NAMES = re.compile(r"(^|_)(url|uri|link|href|image|img|avatar|photo|picture|icon|logo|thumbnail|source|src|"
                       r"feed|callback|import|fetch)($|_)|(Url|Uri|Link|Image|Avatar|Photo|Picture|Icon|Logo|Src)$",
                       re.I)
HOOKS = re.compile(r"webhook|hook|subscription|callback", re.I)
WAIT = 3.0  # seconds for a fetch to arrive (a background job that fetches a preview included)
MAX_OPERATIONS = 8
HINT = ("Do not fetch URLs a client sends. When the feature needs it (an avatar from a link, an import), allow "
        "only https to an allow-list of hosts, resolve the name and refuse private, loopback and link-local "
        "addresses (10/8, 172.16/12, 192.168/16, 127/8, 169.254/16, ::1) before connecting, follow no redirects, "
        "and bound the size and time; or store the link and let the client's browser load it.")


def _url_fields(op: Operation) -> list[str]:
    props = (op.request_schema or {}).get("properties") or {}
    return [name for name, schema in props.items() if isinstance(schema, dict)
            and schema.get("type") in (None, "string")
            and (schema.get("format") in ("uri", "url", "uri-reference") or URL_NAMES.search(name))]


def _candidates(ctx: CheckContext) -> list[tuple[Operation, list[str]]]:
    """Creates and own-profile updates (no path parameter to aim at another's object) taking URL-like fields."""
    found = []
    for op in ctx.api.operations:
        if op.method not in ("POST", "PUT", "PATCH") or "{" in op.path or HOOKS.search(op.path):
            continue
        fields = _url_fields(op)
        if fields:
            found.append((op, fields))
    return found[:MAX_OPERATIONS]


@check("ssrf.client_urls", area="ssrf", title="The API does not fetch URLs its clients choose",
       needs=("service", "spec"), order=40, params={"wait_s": float},
       waits="a fetch of the receiver's URL by the API")
def client_urls(ctx: CheckContext):
    candidates = _candidates(ctx)
    if not candidates:
        return ctx.not_applicable("no operation takes a URL (a field of format uri, or named like image_url, "
                                  "avatar, source, callback) outside webhook registrations")
    receiver, how = receiver_for(ctx.service.kind, ctx.service.base_url)
    if receiver is None:
        return ctx.skip(how)
    wait = float(ctx.params().get("wait_s", WAIT))
    headers = ctx.auth_headers()
    admin = None
    with receiver:
        host = urlsplit(receiver.url()).hostname
        sent = []
        for number, (op, fields) in enumerate(candidates):
            body = valid_example(op.request_schema) or {}
            body = body if isinstance(body, dict) else {}
            urls = {name: receiver.url(f"/ssrf/{number}/{name}") for name in fields}
            body.update(urls)
            at = time.monotonic()  # before the request: a server that fetches while it answers is faster than it
            exchange, who = send(ctx, op.method, op.path, json=body, headers=headers), "user A"
            if exchange.status in (401, 403) and (admin := admin or ctx.admin_identity()) is not None:
                # staff-only (a menu item's image): a fetch by the server is as dangerous when staff send it
                at = time.monotonic()
                exchange = send(ctx, op.method, op.path, json=body, headers=admin.headers(ctx.api.auth))
                who = "the manifest's admin"
            sent.append((op, urls, exchange, at, who))
        deadline = time.monotonic() + wait
        receiver.wait(lambda _: len(_hits(receiver)) >= len(sent), wait)
        hits = _hits(receiver)
        waited = wait - max(0.0, deadline - time.monotonic())
    findings, evidence = [], []
    for number, (op, urls, exchange, at, who) in enumerate(sent):
        fetched = [h for h in hits if h.path.startswith(f"/hooks/{receiver.token}/ssrf/{number}/")]
        evidence.append(exchange.evidence(f"{op.label} as {who} with {', '.join(urls)} set to the grader's "
                                          "receiver"))
        if fetched:
            first = fetched[0]
            field = first.path.rsplit("/", 1)[-1]
            findings.append(ctx.fail(
                "ssrf", "high",
                f"{op.label} made the server fetch the URL its client gave in `{field}`: {first.method} "
                f"{urls[field]} reached the grader's receiver {first.received_at - at:.1f} s after the request "
                f"({host} is an internal address; {how}). Any client can point it at the cloud metadata service "
                "or an admin port on the API's own network (OWASP API7:2023).",
                operation=op.label, hint=HINT,
                evidence=[exchange.evidence(f"the client ({who}) names the grader's receiver in `{field}`"),
                          _fetch_evidence(first, urls[field])]))
    accepted = [(op, exchange) for op, _, exchange, _, _ in sent if ok(exchange)]
    if findings:
        return ctx.verdict(f"{len(findings)} of {len(sent)} operation(s) taking URLs fetched the one the client "
                           "gave", findings, evidence)
    if not accepted:
        return ctx.skip("no operation taking a URL accepted the grader's request ("
                        + "; ".join(f"{op.label} answered {status_text(x)} to {who}" for op, _, x, _, who in sent)
                        + "), so whether it fetches the URL cannot be told")
    return ctx.verdict(f"{len(accepted)} operation(s) accepted a URL pointing at the grader's receiver "
                       f"({', '.join(op.label for op, _ in accepted)}) and none fetched it within {waited:.1f} s "
                       f"({how})", evidence=evidence)


def _hits(receiver):
    prefix = f"/hooks/{receiver.token}/ssrf/"
    return [d for d in receiver.received() + receiver.fetched() if d.path.startswith(prefix)]


def _fetch_evidence(hit, url: str) -> Evidence:
    return Evidence(request=RequestRecord(method=hit.method, url=url, headers=dict(hit.headers)),
                    response=ResponseRecord(status=hit.answered, headers={"Content-Type": "application/json"}),
                    curl="python3 -m http.server 8099  # listen; then send the request above with the URL set to "
                         "http://host.docker.internal:8099/x (or http://127.0.0.1:8099/x): the server's own fetch "
                         "shows in this log",
                    note="the request the API made to the URL its client chose")
