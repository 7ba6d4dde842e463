"""repo.tests runs the project's own tests in the image the grader built: counts, verdict, and the not-run cases.

One tiny image for the module (python:3.12-slim with pytest pip-installed, one passing and one failing test),
built and run once through the real runtime stage; every test reuses it.
"""

from __future__ import annotations

import time
import uuid

import pytest

from portfolio_grader.checks import CheckContext
from portfolio_grader.inspect import inspect_repo
from portfolio_grader.models import ApiModel, Source, Workspace
from portfolio_grader.runtime import RuntimeOptions, start

from ..conftest import kinds, run, write_files as write
from .test_runtime_docker import engine, leftovers  # noqa: F401  (the module's engine fixture)

pytestmark = pytest.mark.docker

TESTS = """\
import time


def test_adds():
    assert 1 + 1 == 2


def test_subtracts():
    assert 3 - 1 == 1


def test_takes_its_time():
    time.sleep(2)  # the deadline test's slow suite
"""
DOCKERFILE = """\
FROM python:3.12-slim
RUN pip install --no-cache-dir pytest==8.3.4
WORKDIR /app
COPY . .
RUN useradd --uid 1000 app
USER app
EXPOSE 8000
CMD ["python", "-m", "http.server", "8000"]
"""



@pytest.fixture(scope="module")
def graded(engine, tmp_path_factory):  # noqa: F811
    """(facts, service, options) of the one image, running for the whole module; removed after it."""
    root = write(tmp_path_factory.mktemp("own-tests"), {"Dockerfile": DOCKERFILE, "tests/test_math.py": TESTS,
                                                        "app.py": "print('hello')\n"})
    opts = RuntimeOptions(run_id=f"t{uuid.uuid4().hex[:10]}", start_timeout=30, build_timeout=300)
    workspace = Workspace(name="own-tests", source=Source(repo=str(root)), path=root)
    facts = inspect_repo(root)
    with start(workspace, facts, opts) as handle:
        assert handle.service.status == "running", handle.service.detail
        yield facts, handle.service, opts
    assert leftovers(engine, opts) == []


def check(facts, service, params=None):
    ctx = CheckContext(workspace=Workspace(name="t", source=Source()), facts=facts, service=service, api=ApiModel(),
                       prober=None, check_params={"repo.tests": params} if params else {})
    return run("repo.tests", ctx)


def test_the_tests_run_in_the_image_and_a_failure_is_partial_credit(graded, engine):  # noqa: F811 (the imported fixture)
    facts, service, opts = graded
    started = time.monotonic()
    outcome = check(facts, service)
    assert time.monotonic() - started < 30
    assert outcome.status == "fail" and outcome.score == pytest.approx(0.5 + 0.5 * 2 / 3), outcome
    assert "2 passed, 1 failed" in outcome.summary and "python -m pytest" in outcome.summary
    assert kinds(outcome) == {"tests_failing"}
    [finding] = outcome.findings
    assert "1 of 3" in finding.message and "tests/test_math.py::test_subtracts" in finding.message
    [run_evidence] = finding.evidence
    assert "1 failed, 2 passed" in run_evidence.excerpt and "exit 1" in run_evidence.note
    assert "pip install --no-cache-dir pytest" in run_evidence.note  # what showed pytest is in the image
    # the sibling container is gone; only the API's own container carries the run label
    running = engine.containers.list(all=True, filters={"label": f"portfolio-grader.run={opts.run_id}"})
    assert [c.id for c in running] == [service.api_container]


def test_the_deadline_stops_a_slow_suite(graded, tmp_path):
    facts, service, _ = graded
    started = time.monotonic()
    outcome = check(facts, service, params={"deadline_s": 1})
    assert time.monotonic() - started < 10
    assert outcome.status == "pass" and not outcome.findings  # the files' verdict stands; the summary says why
    assert "not run to the end" in outcome.summary and "within the 1 s deadline" in outcome.summary


def test_without_the_dev_dependencies_in_the_image_the_tests_are_not_run(graded, tmp_path):
    _, service, _ = graded
    root = write(tmp_path, {"Dockerfile": "FROM python:3.12-slim\nCOPY requirements.txt .\nRUN pip install -r "
                                          "requirements.txt\nCOPY . .\n",
                            "requirements.txt": "fastapi==0.115.0\n", "requirements-dev.txt": "pytest==8.3.4\n",
                            "tests/test_math.py": TESTS})
    outcome = check(inspect_repo(root), service)
    assert outcome.status == "pass" and not outcome.findings
    assert "not run by the grader: the image does not install pytest" in outcome.summary
    assert "requirements-dev.txt, which the image does not install" in outcome.summary


_SANDBOX_REPORT = ("import os; status = open('/proc/self/status').read(); "
                   "print([l for l in status.splitlines() if l.startswith(('CapEff', 'NoNewPrivs'))]); "
                   "print(sorted(os.listdir('/sys/class/net'))); print(os.environ.get('CI'), os.getuid(), os.getcwd())")


def test_the_sibling_is_sandboxed_like_the_api_with_no_network(graded, engine):  # noqa: F811 (the imported fixture)
    from portfolio_grader.runtime.sibling import run_beside

    _, service, opts = graded
    ran = run_beside(service.api_container, ["python", "-c", _SANDBOX_REPORT], timeout=30, env={"CI": "true"})
    assert ran.exit_code == 0, ran
    caps, interfaces, rest = ran.output.strip().splitlines()[-3:]
    assert "CapEff:\\t0000000000000000" in caps and "NoNewPrivs:\\t1" in caps
    assert interfaces == "['lo']"  # no network but loopback
    assert rest == "true 1000 /app"  # the API image's user and folder, and the environment the grader adds
    api = engine.containers.get(service.api_container)
    assert api.status == "running"  # the API itself is untouched
    assert [c.id for c in engine.containers.list(all=True, filters={"label": f"portfolio-grader.run={opts.run_id}"})] \
        == [service.api_container]  # the sibling was removed
