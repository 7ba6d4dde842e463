"""Login hardening: failed logins are rate limited, login errors do not reveal which accounts exist, and
registration refuses the passwords every attacker tries first.

The enumeration and weak-password probes send a handful of requests and run first (order -10): the
contract run fuzzes the login and the rate-limit burst (order 150) fails on purpose, and either may lock
the grader's client out of the login for the rest of the grade. Test users are made before any check
and keep their tokens, so checks that run later still have credentials.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode, urlsplit

from ..authflow import PASSWORD_FIELDS
from ..identities import Identity, login, login_failed, signup_body, token_from
from ..models import AuthFlow, Evidence, Operation
from ..probe import Exchange
from .ratelimit import ordinary_get
from .registry import CheckContext, check

MAX_ATTEMPTS = 30  # failed logins in the burst, at most; sequential
BURST_SECONDS = 10.0  # no attempt starts after this much wall time (one in flight ends within the prober's timeout)
MIN_ANSWERED = 10  # ordinary refusals of a wrong password needed to call the login "not rate limited"
RECOVERY_WAIT = 5.0  # the longest Retry-After the grader waits out before a correct login
WEAK_PASSWORDS = ("123456", "password")
_CONTROL_PASSWORD = "Grader-Control-9x!Qv7"  # tells "refused for the password" from "refused for another reason"

_LOCKOUT_WORDS = re.compile(r"lock(ed|out)|too many|try again (later|in \d)|rate.?limit|slow down"
                            r"|temporar(il)?y (blocked|disabled|suspended)", re.I)
_RATE_HEADER_PREFIXES = ("retry-after", "ratelimit", "x-ratelimit", "x-rate-limit")
_VOLATILE_KEY = re.compile(r"^(timestamp|time|date|datetime|request_?id|trace_?id|correlation_?id|span_?id|path"
                           r"|instance|url|nonce)$", re.I)
_ME_PATH = re.compile(r"/(users?/)?(me|self|current)/?$|/(profile|account)/?$", re.I)

_RATE_LIMIT_HINT = (
    "The attack: password guessing and credential stuffing. A script tries thousands of passwords (or leaked "
    "email/password pairs) per minute against the login; with no limit the only brake is how fast your server "
    "answers (OWASP API4:2023 Unrestricted Resource Consumption, API2:2023 Broken Authentication). "
    "The fix: count failed logins per client IP and per account, and after a few (e.g. 5 per minute) answer "
    "429 Too Many Requests with a Retry-After header until the window ends. "
    "FastAPI: slowapi — `limiter = Limiter(key_func=get_remote_address)`, `app.state.limiter = limiter`, "
    "`app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)`, then "
    "`@limiter.limit(\"5/minute\")` on the login route (its function must take `request: Request`). "
    "Express: express-rate-limit — `const loginLimiter = rateLimit({ windowMs: 60 * 1000, limit: 5, "
    "standardHeaders: 'draft-7', legacyHeaders: false })` and `app.post('/login', loginLimiter, login)`. "
    "Flask: flask-limiter — `limiter = Limiter(get_remote_address, app=app)` and "
    "`@limiter.limit(\"5 per minute\")` on the login view. Behind a proxy, key on the real client address "
    "(ProxyHeadersMiddleware, `app.set('trust proxy', 1)`, ProxyFix); with several workers keep the counters in "
    "Redis so they are shared.")

_ENUMERATION_HINT = (
    "The attack: user enumeration. When the login answers 'no such user' differently from 'wrong password' "
    "(another status code or another message), anyone can feed it a list of emails and learn which ones have an "
    "account here, then aim password guessing or phishing at exactly those (OWASP API2:2023 Broken "
    "Authentication). The fix: one answer for both failures, same status and same body. "
    "FastAPI: `if user is None or not verify_password(form.password, user.hashed_password): raise "
    "HTTPException(401, \"Incorrect email or password\", headers={\"WWW-Authenticate\": \"Bearer\"})`. "
    "Express: `if (!user || !(await bcrypt.compare(password, user.passwordHash))) return "
    "res.status(401).json({ error: 'Invalid email or password' })`. Flask: `return jsonify(error=\"Invalid email "
    "or password\"), 401` on both paths. To keep the timing alike too, check the password against a dummy hash "
    "when the user does not exist, and give sign-up and password-reset the same care.")

_WEAK_PASSWORD_HINT = (
    "The attack: password spraying. \"123456\" and \"password\" top every leaked-password list, so attackers try "
    "them first against every account; an account protected by one falls in the first few guesses however well "
    "you hash it (OWASP API2:2023 Broken Authentication). The fix: validate the password at sign-up and on "
    "password change — at least 8 characters (NIST SP 800-63B) and not in a list of common or breached passwords "
    "— and answer 400/422 saying why. FastAPI: `password: str = Field(min_length=8)` in the pydantic model plus "
    "a `@field_validator(\"password\")` that rejects common passwords (a set loaded from a top-10k list). "
    "Express: express-validator `body('password').isLength({ min: 8 }).not().isIn(COMMON_PASSWORDS)`, or a zxcvbn "
    "score. Flask: `validate.Length(min=8)` in a marshmallow schema (or the pydantic model above) plus the same "
    "common-password check.")

_REGISTER_HINT = "auth:\n  register: POST /api/v1/accounts   # how a new user signs up"


# ---------------------------------------------------------------- auth.login_rate_limit


def _is_refusal(exchange: Exchange) -> bool:
    """429 or 423, or a 400/401/403 (or a 200 that did not log in) whose body says the client is locked out or
    sending too many requests."""
    if exchange.status in (429, 423):
        return True
    return exchange.status in (200, 400, 401, 403) and bool(_LOCKOUT_WORDS.search(exchange.text[:2000]))


def _rate_headers(exchange: Exchange) -> dict[str, str]:
    return {k: v for k, v in exchange.headers.items() if k.lower().startswith(_RATE_HEADER_PREFIXES)}


def _retry_after(exchange: Exchange) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    value = next((v for k, v in exchange.headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


def _headers_text(headers: dict[str, str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in headers.items())


def _slowed_down(answered: list[Exchange]) -> bool:
    """Did answers get much slower during the burst (a tarpit such as express-slow-down)?"""
    times = [e.elapsed_ms for e in answered if e.elapsed_ms is not None]
    return len(times) >= 3 and times[-1] >= 1000 and times[-1] >= 4 * min(times[:3])


def _control_get(ctx: CheckContext) -> Exchange | None:
    """An ordinary GET, to tell a login limit from a limit on every request that earlier probes used up."""
    target = ordinary_get(ctx)
    if target is None:
        return None
    op, headers = target
    return ctx.prober.request("GET", op.path, headers=headers)


def _no_passwords(ctx: CheckContext) -> str:
    return (f"the API has no passwords: its clients get API keys from {ctx.api.auth.signup.label}, so there is no "
            "login to guess at")


@check("auth.login_rate_limit", area="auth", title="Failed logins are rate limited",
       needs=("service", "spec", "user"), order=150)
def login_rate_limit(ctx: CheckContext):
    if ctx.api.auth.issues_keys:
        return ctx.not_applicable(_no_passwords(ctx))
    flow, user = ctx.api.auth, ctx.identities(1)[0]
    operation = flow.login.label
    attempts: list[Exchange] = []
    refusal: Exchange | None = None
    started = time.monotonic()
    while len(attempts) < MAX_ATTEMPTS and (not attempts or time.monotonic() - started < BURST_SECONDS):
        exchange = login(ctx.prober, flow, user.login_value, f"Wrong-Guess-{len(attempts) + 1:02d}-{ctx.run_tag}")
        attempts.append(exchange)
        if _is_refusal(exchange) and login_failed(exchange, flow):
            refusal = exchange
            break
        if exchange.status is None:  # no answer: the login is down or dropping us, not a verdict
            break
    burst = time.monotonic() - started

    server_errors = [e for e in attempts if e.status is not None and e.status >= 500]
    failed = [e for e in attempts if login_failed(e, flow) and e is not refusal]
    accepted = [e for e in attempts if e.status is not None and e.status < 400 and all(e is not f for f in failed)]
    said_in_body = [e for e in failed if e.status < 300]  # `200 {"status": "fail"}`: refused by what it says
    notes = []
    if server_errors:
        notes.append(f"{len(server_errors)} attempt(s) got a server error ({server_errors[0].status}), "
                     "not counted as rate limiting")
    if accepted:
        notes.append(f"{len(accepted)} login(s) with a wrong password were answered {accepted[0].status}: check "
                     "that the login verifies the password")
    done = f"{len(attempts)} failed login(s) for user A in {burst:.2f} s"
    tail = "".join(f"; {n}" for n in notes)
    first = attempts[0].evidence("attempt 1: a wrong password")

    if refusal is not None:
        n = len(attempts)
        seen = _rate_headers(refusal)
        said = "" if refusal.status == 429 else f" {_excerpt(refusal, 80)}"
        headers = (f"headers: {_headers_text(seen)}" if seen else
                   "it sent no Retry-After or RateLimit headers; send Retry-After so clients know when to try again")
        summary = f"{done}: attempt {n} was refused with {refusal.status}{said}; {headers}"
        if n == 1:
            control = _control_get(ctx)
            if control is not None and control.status == 429:
                return ctx.skip(
                    f"{done}: the first failed login was refused with 429, and so was {control.method} "
                    f"{urlsplit(control.url).path}: a limit on all requests was used up earlier in the grade (the load "
                    "or burst probes), so whether failed logins are limited cannot be told from this grade")
            summary += "; earlier login attempts of the grade had used up the allowance already"
        evidence = [first, refusal.evidence(f"attempt {n}: refused")] if n > 1 else [
            refusal.evidence("attempt 1: refused")]
        wait = _retry_after(refusal)
        if wait is not None and wait <= RECOVERY_WAIT:
            time.sleep(min(wait + 0.25, RECOVERY_WAIT))
            again = login(ctx.prober, flow, user.login_value, user.password)
            if again.status is not None and 200 <= again.status < 300:
                summary += f"; after waiting the Retry-After of {wait:g} s a correct login worked again"
                evidence.append(again.evidence("the correct password after waiting out Retry-After: recovered"))
            else:
                summary += (f"; after waiting the Retry-After of {wait:g} s a correct login still got "
                            f"{again.status or again.error} (Retry-After should say when logins work again)")
                evidence.append(again.evidence("the correct password after waiting out Retry-After: still refused"))
        elif wait is not None:
            summary += f"; Retry-After is {wait:g} s, longer than the grader waits ({RECOVERY_WAIT:g} s), so " \
                       "recovery was not checked"
        return ctx.verdict(summary + tail, evidence=evidence)

    last = attempts[-1]
    if said_in_body:
        notes.append(f"{len(said_in_body)} refusal(s) came as {said_in_body[0].status} with no token and a body "
                     f"saying so ({_excerpt(said_in_body[0], 60)}); answer a failed login with 401")
    tail = "".join(f"; {n}" for n in notes)
    if len(failed) >= MIN_ANSWERED:
        statuses = ", ".join(sorted({str(e.status) for e in failed}))
        finding = ctx.fail(
            "login_not_rate_limited", "medium",
            f"{len(failed)} failed logins for one account in {burst:.2f} s were all answered ({statuses}); none "
            "was refused with 429 or a lockout, so an attacker can guess passwords as fast as the server answers "
            "(OWASP API4:2023).",
            operation=operation, hint=_RATE_LIMIT_HINT,
            evidence=[first, last.evidence(f"attempt {len(attempts)}: a wrong password, still not refused")])
        return ctx.verdict(f"{done}: none was refused{tail}", [finding], finding.evidence)
    answered = [e for e in attempts if e.status is not None]
    if burst >= BURST_SECONDS and _slowed_down(answered):
        return ctx.verdict(f"{done}: none was refused, but answers slowed from {answered[0].elapsed_ms:.0f} ms to "
                           f"{answered[-1].elapsed_ms:.0f} ms, which throttles guessing{tail}",
                           evidence=[first, last.evidence("a later attempt: slowed down")])
    why = (f"the login gave no answer to attempt {len(attempts)} ({last.error})" if last.status is None else
           f"only {len(failed)} of them got an ordinary refusal within {BURST_SECONDS:g} s")
    return ctx.skip(f"could not judge the login's rate limiting: {done}, {why}{tail}")


# ---------------------------------------------------------------- auth.user_enumeration


def _normalised(exchange: Exchange, sent: tuple[str, ...]) -> str:
    """The error as comparable text: JSON without volatile fields (timestamps, request ids), the values the
    client sent replaced by a placeholder, case and spacing folded."""

    def clean(node):
        if isinstance(node, dict):
            return {k: clean(v) for k, v in node.items() if not _VOLATILE_KEY.match(str(k).replace("-", "_"))}
        if isinstance(node, list):
            return [clean(v) for v in node]
        if isinstance(node, str):
            for value in sent:
                node = node.replace(value, "<sent>")
            return " ".join(node.lower().split())
        return node

    data = exchange.json()
    return json.dumps(clean(data if data is not None else exchange.text), sort_keys=True)


def _excerpt(exchange: Exchange, limit: int = 120) -> str:
    text = " ".join(exchange.text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _unknown_login(known: str, tag: str) -> str:
    """A login value in the same shape as the real one (an email or a username) that no account has."""
    unique = f"pg{tag}nobody{secrets.token_hex(3)}"
    return f"{unique}@example.com" if "@" in known else unique


@check("auth.user_enumeration", area="auth", title="Login does not reveal which accounts exist",
       needs=("service", "spec", "user"), order=-10)
def user_enumeration(ctx: CheckContext):
    if ctx.api.auth.issues_keys:
        return ctx.not_applicable(_no_passwords(ctx))
    flow, user = ctx.api.auth, ctx.identities(1)[0]
    wrong = f"Wrong-Pass-{ctx.run_tag}-7q!"
    nobody = _unknown_login(user.login_value, ctx.run_tag)
    ghost = login(ctx.prober, flow, nobody, wrong)
    known = login(ctx.prober, flow, user.login_value, wrong)
    evidence = [ghost.evidence("an account that does not exist"),
                known.evidence("user A's account with a wrong password")]
    pair = f"unknown user -> {ghost.status or ghost.error}, wrong password -> {known.status or known.error}"
    if ghost.status is None or known.status is None:
        return ctx.skip(f"the login did not answer both attempts ({pair})")
    if _is_refusal(ghost) or _is_refusal(known):
        return ctx.skip(f"the login was already rate limiting this client ({pair}), so its error messages could "
                        "not be compared")
    if ghost.status >= 500 and known.status >= 500:
        return ctx.skip(f"the login failed with a server error both times ({pair})")
    if not (login_failed(known, flow) and login_failed(ghost, flow)):
        return ctx.skip(f"the login accepted a wrong password or an unknown user ({pair}); check that it "
                        "verifies credentials")

    if ghost.status != known.status:
        message = (f"The login answers an unknown user with {ghost.status} and a known user with a wrong password "
                   f"with {known.status}: anyone can test which accounts exist.")
    elif _normalised(ghost, (nobody, wrong)) != _normalised(known, (user.login_value, wrong)):
        message = (f"The login answers both with {known.status}, but with different errors — unknown user: "
                   f"{_excerpt(ghost)!r}, wrong password: {_excerpt(known)!r}: anyone can test which accounts "
                   "exist.")
    else:
        return ctx.verdict(f"an unknown user and a wrong password get the same answer: {known.status} "
                           f"{_excerpt(known, 80)}", evidence=evidence)
    finding = ctx.fail("user_enumeration", "low", message, operation=flow.login.label, evidence=evidence,
                       hint=_ENUMERATION_HINT)
    return ctx.verdict(f"the login's answers differ ({pair})", [finding], evidence, warn_only=True)


# ---------------------------------------------------------------- auth.weak_password


def _register(ctx: CheckContext, flow: AuthFlow, password: str, label: str) -> tuple[Exchange | None, str]:
    """One registration of a fresh user with exactly this password (no retry with a stronger one)."""
    op = flow.signup
    schema = op.request_schema or op.request_form_schema or {}
    body, login_value = signup_body(schema, flow, label, ctx.run_tag, password)
    if not any(k in PASSWORD_FIELDS or "password" in k.lower() for k in body):
        return None, login_value
    if op.request_schema is None and op.request_form_schema is not None:
        return ctx.prober.request("POST", op.path, content=urlencode(body),
                                  headers={"Content-Type": "application/x-www-form-urlencoded"}), login_value
    return ctx.prober.request("POST", op.path, json=body), login_value


def _delete_me_operation(ctx: CheckContext, flow: AuthFlow) -> Operation | None:
    return next((op for op in ctx.api.operations if op.method == "DELETE" and (
        op.path == flow.me.path if flow.me is not None else bool(_ME_PATH.search(op.path)))), None)


def _clean_up(ctx: CheckContext, flow: AuthFlow, accounts: list[tuple[str, str]]) -> tuple[str, list[Evidence]]:
    """Delete the accounts made (login value, password) when the API lets a user close their account."""
    if not accounts:
        return "", []
    op = _delete_me_operation(ctx, flow)
    names = ", ".join(value for value, _ in accounts)
    if op is None:
        return (f"; the API offers no DELETE on {flow.me.path if flow.me else 'a /users/me path'}, so the test "
                f"account(s) remain: {names}"), []
    deleted, evidence = 0, []
    for value, password in accounts:
        answer = login(ctx.prober, flow, value, password)
        token, cookie = token_from(answer, flow) if answer.status and answer.status < 300 else (None, None)
        if token is None and cookie is None:
            continue
        gone = ctx.prober.request(op.method, op.path,
                                  headers=Identity("W", value, password, token, cookie).headers(flow))
        if gone.status is not None and 200 <= gone.status < 300:
            deleted += 1
            evidence = evidence or [gone.evidence(f"{op.label}: the test account is removed")]
    if deleted == len(accounts):
        return f"; deleted the {deleted} test account(s) with {op.label}", evidence
    return f"; deleted {deleted} of {len(accounts)} test account(s) with {op.label}, the rest remain: {names}", evidence


def _made_anyway(ctx: CheckContext, flow: AuthFlow, login_value: str, password: str) -> Exchange | None:
    """The login that shows a sign-up which answered 5xx made the account all the same (it gives a token)."""
    answer = login(ctx.prober, flow, login_value, password)
    return answer if not login_failed(answer, flow) and any(token_from(answer, flow)) else None


@check("auth.weak_password", area="auth", title="Registration refuses weak passwords",
       needs=("service", "spec", "auth"), order=-10)
def weak_password(ctx: CheckContext):
    flow = ctx.api.auth
    if flow.issues_keys:
        return ctx.not_applicable(_no_passwords(ctx))
    if flow.signup is None:
        return ctx.skip("the API has no registration operation to try weak passwords on", _REGISTER_HINT)
    accepted: list[tuple[str, Exchange]] = []
    refused: list[tuple[str, Exchange]] = []
    unjudged: list[str] = []
    made: list[tuple[str, str]] = []  # accounts created: (login value, password)
    crashed: list[Evidence] = []  # logins of accounts whose sign-up answered 5xx
    for i, password in enumerate(WEAK_PASSWORDS):
        exchange, login_value = _register(ctx, flow, password, f"w{i}")
        if exchange is None:
            return ctx.skip(f"the sign-up body of {flow.signup.label} has no password field the grader recognises",
                            _REGISTER_HINT)
        if exchange.status is not None and 200 <= exchange.status < 300:
            accepted.append((password, exchange))
            made.append((login_value, password))
        elif exchange.status is not None and 400 <= exchange.status < 500 and not _is_refusal(exchange):
            refused.append((password, exchange))
        elif (exchange.status or 0) >= 500 and (logged_in := _made_anyway(ctx, flow, login_value, password)):
            accepted.append((password, exchange))  # the sign-up crashed after it stored the account: it logs in
            made.append((login_value, password))
            crashed.append(logged_in.evidence(f"the account made with {password!r} logs in though its sign-up "
                                              f"answered {exchange.status}"))
        else:
            unjudged.append(f"{password!r} got {exchange.status or exchange.error}")

    control_note = ""
    if refused and not accepted and any("pass" not in e.text.lower() for _, e in refused):
        # The refusal does not mention the password: make sure a strong one would have been accepted.
        control, login_value = _register(ctx, flow, _CONTROL_PASSWORD, "wc")
        if control is not None and control.status is not None and 200 <= control.status < 300:
            made.append((login_value, _CONTROL_PASSWORD))
            control_note = "; a strong password was accepted by the same request, so the refusals were for the password"
        else:
            status = control.status or control.error if control is not None else "no request"
            unjudged += [f"{p!r} got {e.status}" for p, e in refused]
            refused = []
            control_note = f"; a strong password was refused too ({status}), so the refusals say nothing about it"

    cleanup, cleanup_evidence = _clean_up(ctx, flow, made)
    tried = "; ".join(f"{p!r} -> {e.status}" for p, e in accepted + refused)
    not_judged = f"; not judged: {', '.join(unjudged)}" if unjudged else ""
    if accepted:
        passwords = " and ".join(repr(p) for p, _ in accepted)
        evidence = [e.evidence(f"a new account with the password {p!r}: accepted") for p, e in accepted] + crashed
        finding = ctx.fail("weak_password_accepted", "low",
                           f"{flow.signup.label} created accounts with the password {passwords}: the first "
                           "passwords any attacker tries.", operation=flow.signup.label, evidence=evidence,
                           hint=_WEAK_PASSWORD_HINT)
        return ctx.verdict(f"registration accepted weak passwords ({tried}){not_judged}{cleanup}", [finding],
                           evidence + cleanup_evidence, warn_only=True)
    if refused:
        evidence = [e.evidence(f"a new account with the password {p!r}: refused") for p, e in refused]
        return ctx.verdict(f"registration refused weak passwords ({tried}){control_note}{not_judged}{cleanup}",
                           evidence=evidence + cleanup_evidence)
    return ctx.skip(f"registration with weak passwords could not be judged: {', '.join(unjudged)}{control_note}"
                    f"{cleanup}")
