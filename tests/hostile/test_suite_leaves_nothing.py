"""Runs last in tests/hostile: after the whole suite, no Docker object of any of its grades remains.

Only the suite's own run ids are looked at (`hostile-...`, `sbx-...`): other grades may be running on
the same engine, and their objects carry the grader's label too.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.docker

SUITE_PREFIXES = ("hostile-", "sbx-")


def test_no_container_network_volume_or_image_of_the_suite_remains(docker_client):
    flt = {"label": "portfolio-grader.run"}

    def ours(labels: dict | None) -> bool:
        return str((labels or {}).get("portfolio-grader.run", "")).startswith(SUITE_PREFIXES)

    left = [f"container {c.name}" for c in docker_client.containers.list(all=True, filters=flt) if ours(c.labels)]
    left += [f"network {n.name}" for n in docker_client.networks.list(filters=flt) if ours(n.attrs.get("Labels"))]
    left += [f"volume {v.name}" for v in docker_client.volumes.list(filters=flt) if ours(v.attrs.get("Labels"))]
    left += [f"image {i.tags}" for i in docker_client.images.list(filters=flt) if ours(i.labels)]
    left += [f"image {t}" for i in docker_client.images.list() for t in i.tags
             if t.rsplit(":", 1)[-1].startswith(SUITE_PREFIXES)]
    assert left == []
