"""Schemathesis fuzzes as two disposable users, so its object-level authorization check (ST402) can see one user
read the other's object; a finding maps to bola_read under contract.auth_enforced."""

from __future__ import annotations

import pytest

from ..conftest import make_context, run
from .auth_apps import tasks_app


@pytest.mark.parametrize("flawed", [True, False], ids=["owner-unchecked-read", "owner-checked"])
def test_the_fuzzer_replays_one_users_reads_as_the_other(serve, flawed, tmp_path):
    ctx = make_context(serve(tasks_app(bola_read=flawed)))
    a, b = ctx.identities(2)
    outcome = run("contract.auth_enforced", ctx)
    assert "checked with two users (F and G)" in outcome.summary, outcome.summary
    peers = ctx.fuzz_peers()
    assert len(peers) == 2 and peers[0] != peers[1]
    assert all(p not in (a.headers(ctx.api.auth), b.headers(ctx.api.auth)) for p in peers)  # A and B stay unharmed
    bola = [f for f in outcome.findings if f.kind == "bola_read"]
    if flawed:
        assert outcome.status == "fail" and [f.operation for f in bola] == ["GET /tasks/{task_id}"], outcome.summary
        assert any("# as G" in (e.curl or "") or "as `G`" in e.note for f in bola for e in f.evidence), bola[0]
    else:
        assert not bola, [f.message for f in bola]
    # the peers document held tokens: it does not outlive the run
    from portfolio_grader.checks.contract import _private_dir

    assert not list(_private_dir().glob(f"peers-{ctx.run_tag}-*.json"))
