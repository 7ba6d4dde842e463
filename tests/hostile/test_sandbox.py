"""The sandbox itself, against the real engine: what a container may and may not do at run time.

A probe app reports, from inside the container, whether it can write to /etc, /tmp and its own folder,
and whether it can open TCP connections out (the internet) and to the host's Docker bridge gateway.
"""

from __future__ import annotations

import secrets
import socket
import threading
from pathlib import Path

import httpx
import pytest

from portfolio_grader.inspect import inspect_repo
from portfolio_grader.models import Source, Workspace
from portfolio_grader.runtime import start
from portfolio_grader.runtime.sandbox import SandboxConfig

from .conftest import leftovers

pytestmark = pytest.mark.docker

PROBE_APP = '''import http.server, json, os, socket, sys
{startup}
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        if self.path != "/probe":
            self.send_response(200); self.end_headers(); self.wfile.write(b"up"); return
        out = {{}}
        for path in ("/etc/pg-probe", "/app/pg-probe", "/tmp/pg-probe"):
            try:
                open(path, "w").write("1"); out[path] = "written"
            except OSError as exc:
                out[path] = f"errno {{exc.errno}}"
        targets = {{"internet": ("1.1.1.1", 443), "registry": (os.environ["PG_REGISTRY"], 443)}}
        gateway = os.environ.get("PG_GATEWAY")
        if gateway:
            host, port = gateway.split(":")
            targets["host"] = (host, int(port))
        for name, target in targets.items():
            s = socket.socket(); s.settimeout(3)
            try:
                s.connect(target); out[name] = "open"
            except OSError as exc:
                out[name] = type(exc).__name__
            finally:
                s.close()
        body = json.dumps(out).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("0.0.0.0", 8000), H).serve_forever()
'''
DOCKERFILE = ("FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\nENV PG_GATEWAY={gateway} PG_REGISTRY={registry}\n"
              "EXPOSE 8000\n"
              "CMD [\"python\", \"-u\", \"app.py\"]\n")


def bridge_gateway(client) -> str:
    """The host's address on Docker's default bridge (IPAM may omit Gateway: then the subnet's first host)."""
    import ipaddress

    config = next(c for c in client.networks.get("bridge").attrs["IPAM"]["Config"] if ":" not in c["Subnet"])
    return config.get("Gateway") or str(next(ipaddress.ip_network(config["Subnet"]).hosts()))


@pytest.fixture
def host_listener(docker_client):
    """A TCP listener on the host's Docker bridge gateway (where the webhook receiver listens)."""
    gateway = bridge_gateway(docker_client)
    server = socket.socket()
    server.bind((gateway, 0))
    server.listen(8)
    stop = threading.Event()

    def accept():
        server.settimeout(0.5)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"{gateway}:{server.getsockname()[1]}"
    stop.set()
    thread.join(2)
    server.close()


def graded_repo(tmp_path: Path, gateway: str, startup: str = "", manifest: str = "") -> tuple[Workspace, object]:
    root = tmp_path / "repo"
    root.mkdir()
    registry = socket.gethostbyname("pypi.org")  # resolved here: without egress the container has no DNS either
    (root / "Dockerfile").write_text(DOCKERFILE.format(gateway=gateway, registry=registry))
    (root / "app.py").write_text(PROBE_APP.format(startup=startup))
    if manifest:
        (root / "portfolio-grader.yaml").write_text(manifest)
    return Workspace(name=f"sandbox-{tmp_path.name}", source=Source(repo=str(root)), path=root), inspect_repo(root)


def probe(handle) -> dict:
    return httpx.get(handle.service.base_url + "/probe", timeout=30).json()


def test_the_container_runs_read_only_without_egress_but_reaches_the_host(docker_client, tmp_path, host_listener):
    workspace, facts = graded_repo(tmp_path, host_listener)
    options = SandboxConfig(memory="256m", cpus=0.5, pids=64).runtime_options(f"sbx-{secrets.token_hex(4)}",
                                                                               start_timeout=30)
    with start(workspace, facts, options) as handle:
        assert handle.service.up, handle.service.detail
        seen = probe(handle)
        config = docker_client.containers.get(handle.service.api_container).attrs
        host = config["HostConfig"]
        network = docker_client.networks.get(next(iter(config["NetworkSettings"]["Networks"])))
    assert seen["/etc/pg-probe"] == "errno 30"  # EROFS: the root filesystem is read-only
    assert seen["/tmp/pg-probe"] == "written" and seen["/app/pg-probe"] == "written"  # tmpfs, the app's folder
    assert seen["internet"] != "open" and seen["registry"] != "open"  # no route out at run time
    assert seen["host"] == "open"  # the grader's webhook receiver on the bridge gateway stays reachable
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]
    assert host["Privileged"] is False and not host.get("Binds") and host["PidsLimit"] == 64
    assert host["Memory"] == 256 * 2**20 and host["NanoCpus"] == 500_000_000
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "2", "max-size": "10m"}}
    assert all(b["HostIp"] == "127.0.0.1" for bindings in host["PortBindings"].values() for b in bindings)
    assert network.attrs["Options"]["com.docker.network.bridge.enable_ip_masquerade"] == "false"
    assert network.attrs["Labels"]["portfolio-grader.run"] == options.run_id
    assert leftovers(docker_client, options.run_id) == []


def test_a_manifest_that_asks_for_egress_gets_a_route_out(docker_client, tmp_path, host_listener):
    workspace, facts = graded_repo(tmp_path, host_listener, manifest="egress: true\n")
    options = SandboxConfig().runtime_options(f"sbx-{secrets.token_hex(4)}", start_timeout=30)
    with start(workspace, facts, options) as handle:
        assert handle.service.up, handle.service.detail
        seen = probe(handle)
        notes = list(handle.notes)
    assert seen["registry"] == "open"  # PyPI, which this machine can reach
    assert any("egress: true" in note for note in notes)
    assert leftovers(docker_client, options.run_id) == []


def test_an_app_that_needs_a_writable_root_runs_again_writable_with_a_note(docker_client, tmp_path, host_listener):
    startup = 'os.makedirs("/var/lib/pg-app", exist_ok=True); open("/var/lib/pg-app/state", "w").write("1")'
    workspace, facts = graded_repo(tmp_path, host_listener, startup=startup)
    options = SandboxConfig().runtime_options(f"sbx-{secrets.token_hex(4)}", start_timeout=30)
    with start(workspace, facts, options) as handle:
        assert handle.service.up, handle.service.detail
        assert handle.read_only is False
        seen = probe(handle)
        notes = list(handle.notes)
    assert seen["/etc/pg-probe"] == "written"  # the fallback really is writable
    assert any("read-only root filesystem" in note and "Read-only file system" in note for note in notes), notes
    assert leftovers(docker_client, options.run_id) == []
