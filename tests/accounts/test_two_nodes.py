"""Two real server processes on one database: signing out on one is honoured by the other
at once, because every node checks the session in the shared database."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from accounts.support import PASSWORD
from emporium.core.config import Settings
from servers import server_env, upgrade_database
from servers import servers as _servers


@pytest.mark.slow
def test_logout_on_one_node_is_honoured_by_the_other(
    settings: Settings, key_file: Path, tmp_path: Path
) -> None:
    """Sign in on node 1, read the profile on node 2; after logout on node 1 the same token
    is refused on node 2 at once, and so is the refresh token."""
    env = server_env(settings.database_url, key_file)
    if settings.is_sqlite:
        upgrade_database(env, tmp_path)

    email = f"two.nodes.{uuid.uuid4().hex[:8]}@example.com"
    with _servers(2, env, tmp_path) as (one, two):
        response = httpx.post(
            f"{one}/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        response = httpx.post(
            f"{one}/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        pair = response.json()
        headers = {"Authorization": f"Bearer {pair['access_token']}"}

        response = httpx.get(f"{two}/api/v1/users/me", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["email"] == email

        response = httpx.post(f"{one}/api/v1/auth/logout", headers=headers)
        assert response.status_code == 204, response.text
        response = httpx.get(f"{two}/api/v1/users/me", headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        response = httpx.post(
            f"{two}/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert response.status_code == 401, response.text
        response = httpx.get(f"{one}/api/v1/users/me", headers=headers)
        assert response.status_code == 401, response.text
