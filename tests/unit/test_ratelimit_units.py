"""The burst reads "requests left" from every rate-limit header form it accepts (and nothing else); the advanced
tier grades it and the capstone tier inherits it."""

from __future__ import annotations

import pytest

from portfolio_grader.checks.ratelimit import remaining_values
from portfolio_grader.rubric import load_rubric


@pytest.mark.parametrize("headers, expected", [
    ({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "99", "X-RateLimit-Reset": "1700000000"},
     {"x-ratelimit-remaining": 99}),
    ({"RateLimit-Limit": "100", "RateLimit-Remaining": "0", "RateLimit-Reset": "50"}, {"ratelimit-remaining": 0}),
    ({"x-rate-limit-remaining": "7"}, {"x-rate-limit-remaining": 7}),
    ({"X-RateLimit-Remaining": "9, 999"}, {"x-ratelimit-remaining": 9, "x-ratelimit-remaining#1": 999}),
    # IETF draft-7: one dictionary header
    ({"RateLimit": "limit=100, remaining=99, reset=50", "RateLimit-Policy": "100;w=60"}, {"ratelimit": 99}),
    # IETF draft-8+: a list of items named by policy, r = remaining, t = reset
    ({"RateLimit": '"default";r=99;t=50', "RateLimit-Policy": '"default";q=100;w=60'}, {"ratelimit default": 99}),
    ({"ratelimit": '"burst";r=9;t=1, "day";r=999;t=3600'}, {"ratelimit burst": 9, "ratelimit day": 999}),
    ({"RateLimit": "default;r=5;t=1"}, {"ratelimit default": 5}),
    # a limit and a window, but no count; and headers of other things
    ({"RateLimit-Policy": "100;w=60", "X-RateLimit-Limit": "100"}, {}),
    ({"RateLimit": '"default";t=50'}, {}),
    ({"X-Remaining": "5", "Retry-After": "30", "Content-Length": "12"}, {}),
])
def test_remaining_values(headers, expected):
    assert remaining_values(headers) == expected


def test_rate_limits_is_an_advanced_criterion_that_capstone_inherits():
    for tier in ("advanced", "capstone"):
        criterion = next(c for c in load_rubric(tier).criteria if c.id == "rate-limits")
        assert criterion.checks == ["ratelimit.burst"] and criterion.points == 6 and criterion.area == "ratelimit"
        assert criterion.owasp == "API4:2023" and "429" in criterion.hint and "Remaining" in criterion.hint
    assert "ratelimit.burst" not in load_rubric("intermediate").check_ids
