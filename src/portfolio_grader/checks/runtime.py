"""Does the submission build, start and stay up? Read from what the runtime stage observed."""

from __future__ import annotations

from ..models import Evidence
from .registry import CheckContext, check

_BUILD_HINT = ("Run `docker build .` on a clean checkout and fix the first failing step; make sure every file the "
               "Dockerfile COPYs is committed and spelled exactly (Linux file names are case-sensitive).")


def _log_evidence(ctx: CheckContext, name: str, command: str, note: str) -> list[Evidence]:
    tail = next((log for log in ctx.service.logs if log.name == name), None)
    if tail is None:
        return []
    return [Evidence(curl=command, note=note, excerpt=tail.text[-4000:])]


@check("runtime.builds", area="runtime", title="The Docker image builds")
def builds(ctx: CheckContext):
    service = ctx.service
    if service.kind == "external":
        return ctx.skip("a live URL was graded: no image was built")
    if service.kind == "none":
        finding = ctx.fail("build_failed", "high", "The repository has no Dockerfile (or compose file), so a reviewer "
                           "cannot run it with one command.", hint="Add a Dockerfile that installs the dependencies "
                           "and starts the API on 0.0.0.0, plus an EXPOSE line for its port.")
        return ctx.verdict("no Dockerfile", [finding])
    command = f"docker build -f {ctx.facts.dockerfile or 'Dockerfile'} ."
    if service.status == "build_failed":
        finding = ctx.fail("build_failed", "critical", f"The image did not build: {service.detail}",
                           evidence=_log_evidence(ctx, "build", command, "the end of the build log"), hint=_BUILD_HINT)
        return ctx.verdict("the image did not build", [finding])
    if service.status != "running" and not any(log.name == "build" for log in service.logs):
        return ctx.skip(f"nothing was built: {service.detail or service.status}")  # refused before any build
    return ctx.verdict(f"the image built with {service.builder or 'Docker'}",
                       evidence=_log_evidence(ctx, "build", command, "the end of the build log"))


@check("runtime.starts", area="runtime", title="The container starts and answers HTTP")
def starts(ctx: CheckContext):
    service = ctx.service
    if service.status in ("build_failed", "not_started"):
        return ctx.skip("the container was never started: the image did not build")
    if service.status in ("start_failed", "container_crashed"):
        api_log = next((log.name for log in service.logs if log.name != "build"), "api")
        finding = ctx.fail(
            service.status, "critical", f"The API did not come up: {service.detail}",
            evidence=_log_evidence(ctx, api_log, "docker logs <container>", "the end of the container log"),
            hint="Listen on 0.0.0.0 (not 127.0.0.1 or localhost) on the port your Dockerfile EXPOSEs, and read "
                 "configuration from environment variables with working defaults. Add `port:` to "
                 "portfolio-grader.yaml if the port is unusual.")
        return ctx.verdict("the API did not come up", [finding])
    first = ctx.prober.request("GET", ctx.facts.manifest.health if ctx.facts.manifest and ctx.facts.manifest.health else "/")
    return ctx.verdict(f"the API answered at {service.base_url} ({service.kind})",
                       evidence=[first.evidence("the service answers HTTP")])


@check("runtime.stable", area="runtime", title="The API stays up during the whole grade", needs=("service",), order=200)
def stable(ctx: CheckContext):
    last = ctx.prober.request("GET", "/")
    if ctx.alive() and last.status is not None:
        return ctx.verdict(f"still answering after {len(ctx.prober.exchanges)} requests",
                           evidence=[last.evidence("the API still answers at the end of the grade")])
    finding = ctx.fail("container_crashed", "critical", "The API stopped answering during the grade: a request "
                       "crashed or exhausted it (see the container log).",
                       evidence=[last.evidence("no answer at the end of the grade")],
                       hint="Look at the end of the container log for the request that killed the process; catch "
                            "errors per request instead of letting them end the server.")
    return ctx.verdict("the API went down during the grade", [finding])
