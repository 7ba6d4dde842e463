"""End-to-end fixtures: a real Docker engine, or a failure in CI (never a silent skip there)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def docker_client():
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # any reason the engine cannot be reached
        message = f"no Docker engine: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run the end-to-end tests)")
        pytest.skip(message)
    return client


def grader_objects(client, label: str = "portfolio-grader") -> dict[str, list[str]]:
    """Everything on the engine carrying the grader's label."""
    filters = {"label": label}
    return {
        "containers": [c.name for c in client.containers.list(all=True, filters=filters)],
        "networks": [n.name for n in client.networks.list(filters=filters)],
        "volumes": [v.name for v in client.volumes.list(filters=filters)],
        "images": [t for i in client.images.list(filters=filters) for t in (i.tags or [i.short_id])],
    }
