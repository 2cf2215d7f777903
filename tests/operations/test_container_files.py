"""``deploy/container/`` checked statically: no container engine could build or run images
where these files were written (no daemon, no registry), so what can be run is run.

- the compose file has the services ``docs/operations.md`` names, in the documented order
  (PostgreSQL and Redis healthy, then the one-shot migration, then nodes and the worker);
- every ``emporium`` command the compose file and the Dockerfile start exists with those
  options (``emporium ... --help`` answers);
- every ``EMPORIUM_*`` setting they (and the systemd example environment) set is a real
  setting with a valid value, and the processes fit PostgreSQL's default 100 connections;
- every file the Dockerfile copies exists; its health check is valid Python;
- compose's nginx file passes ``nginx -t`` and proxies exactly like the shipped one.
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from emporium.core.config import Settings
from operations.support import DEPLOY, NGINX, NGINX_CONF, REPO, Nginx, self_signed
from servers import EMPORIUM

COMPOSE = DEPLOY / "container" / "compose.yaml"
DOCKERFILE = DEPLOY / "container" / "Dockerfile"
COMPOSE_NGINX = DEPLOY / "container" / "nginx.conf"
ENV_EXAMPLE = DEPLOY / "systemd" / "emporium.env.example"
POSTGRES_DEFAULT_MAX_CONNECTIONS = 100
SUPERUSER_RESERVED = 3


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _emporium_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == "emporium:latest"
    }


def _settings_of(environment: dict[str, str]) -> Settings:
    """The settings an environment gives, refused when a name is not a setting."""
    values: dict[str, str] = {}
    for name, value in environment.items():
        assert name.startswith("EMPORIUM_"), name
        field = name.removeprefix("EMPORIUM_").lower()
        assert field in Settings.model_fields, f"{name} is not a setting"
        values[field] = str(value)
    return Settings.model_validate(values)


def _runs(argv: list[str]) -> None:
    done = subprocess.run([EMPORIUM, *argv, "--help"], capture_output=True, text=True)
    assert done.returncode == 0, f"emporium {shlex.join(argv)}: {done.stderr}"


def test_compose_has_the_documented_services_in_order() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "node-1", "node-2", "worker", "nginx"}
    ours = _emporium_services(compose)
    assert set(ours) == {"migrate", "node-1", "node-2", "worker"}
    assert ours["migrate"]["command"] == ["db", "upgrade"]
    assert ours["migrate"]["restart"] == "no"
    assert ours["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("node-1", "node-2", "worker"):
        assert ours[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert [ours[n]["command"][0] for n in ("node-1", "node-2", "worker")] == [
        "serve",
        "serve",
        "worker",
    ]
    nginx = services["nginx"]
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in nginx["volumes"]
    assert (COMPOSE.parent / compose["secrets"]["emporium-keys"]["file"]).resolve().parent == REPO


def test_every_command_the_containers_run_exists() -> None:
    for service in _emporium_services(_compose()).values():
        _runs(service["command"])
    text = DOCKERFILE.read_text()
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M)
    command = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert entrypoint is not None
    assert command is not None
    assert ast.literal_eval(entrypoint.group(1)) == ["emporium"]
    _runs(ast.literal_eval(command.group(1)))


def test_every_setting_is_real_and_the_processes_fit_postgresql() -> None:
    compose = _compose()
    ours = _emporium_services(compose)
    settings = [_settings_of(service["environment"]) for service in ours.values()]
    assert all(not s.is_sqlite and not s.jobs_embedded for s in settings)
    nodes = [s for name, s in zip(ours, settings, strict=True) if name.startswith("node-")]
    workers = [s for name, s in zip(ours, settings, strict=True) if name == "worker"]
    used = sum(s.connections_per_server for s in nodes) + sum(
        s.connections_per_worker for s in workers
    )
    # Room left for the migration, psql and backups too.
    assert used + 10 <= POSTGRES_DEFAULT_MAX_CONNECTIONS - SUPERUSER_RESERVED

    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    documented = _settings_of(example)
    # docs/operations.md's layout: three nodes and two workers on the default pools.
    assert (
        3 * documented.connections_per_server + 2 * documented.connections_per_worker + 10
        <= POSTGRES_DEFAULT_MAX_CONNECTIONS - SUPERUSER_RESERVED
    )


def test_the_dockerfile_copies_what_exists_and_checks_readyz() -> None:
    text = DOCKERFILE.read_text()
    copied = [
        source
        for line in text.splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    ]
    assert copied
    for source in copied:
        assert (REPO / source).exists(), f"the Dockerfile copies {source}, which is missing"
    health = re.search(r'CMD \["python", "-c", "(.*)"\]$', text, re.M)
    assert health is not None
    assert "/readyz" in health.group(1)
    compile(health.group(1), "HEALTHCHECK", "exec")
    assert re.search(r"^USER emporium$", text, re.M), "the image runs as root"


def _location(text: str) -> str:
    return text[text.index("    location / {") :].split("\n    }\n", 1)[0]


def test_compose_nginx_proxies_like_the_shipped_file() -> None:
    assert _location(COMPOSE_NGINX.read_text()) == _location(NGINX_CONF.read_text())


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")
def test_compose_nginx_file_passes_nginx_t(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    proxy = Nginx(folder=tmp_path, nodes=[8001, 8002], cert=cert, key=key)
    proxy.render()
    site = COMPOSE_NGINX.read_text()
    for name in ("node-1", "node-2"):
        site = site.replace(f"server {name}:8000", "server 127.0.0.1:8000")
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{proxy.http_port};")
    (tmp_path / "emporium.conf").write_text(site)
    done = subprocess.run(proxy.command("-t"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
