"""``emporium users create-admin``: the first admin of a fresh deployment, created from the
command line, signs in over the API; a weak password is refused."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner, Result

from accounts.support import API, Client, assert_problem, bearer, enable_mfa, login, new_email
from emporium.accounts.masking import mask_email
from emporium.cli import main
from emporium.core.config import Settings

STRONG = "Harbour owls juggle 31 violet kites"


async def _create_admin(settings: Settings, email: str, password: str) -> Result:
    """Run ``emporium users create-admin --email E --password-stdin`` (in a thread: the
    command runs its own event loop)."""
    env = {"EMPORIUM_DATABASE_URL": settings.database_url}
    command = ["users", "create-admin", "--email", email, "--password-stdin"]
    return await asyncio.to_thread(
        CliRunner().invoke, main, command, input=password + "\n", env=env
    )


@pytest.mark.slow
async def test_create_admin_then_sign_in(client: Client, settings: Settings) -> None:
    """The admin created on the command line signs in, is refused admin and staff
    operations (403 ``mfa_required``) but can enrol MFA, and then manages users; the
    password is never printed; the same e-mail cannot be created twice."""
    email = new_email("root")
    result = await _create_admin(settings, email, STRONG)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "admin created" in result.output
    assert STRONG not in result.output

    pair = await login(client, email, STRONG)
    headers = bearer(pair["access_token"])
    me = (await client.get(f"{API}/users/me", headers=headers)).json()
    assert me["email"] == email
    assert set(me["roles"]) == {"admin", "staff"}
    response = await client.get(f"{API}/users", headers=headers)
    assert_problem(response, 403, "mfa_required")
    response = await client.post(f"{API}/categories", json={"name": "Early"}, headers=headers)
    assert_problem(response, 403, "mfa_required")
    await enable_mfa(client, headers)
    response = await client.get(f"{API}/users", headers=headers)
    assert response.status_code == 200, response.text
    assert mask_email(email) in {u["email"] for u in response.json()["items"]}
    response = await client.post(f"{API}/categories", json={"name": "Root Made"}, headers=headers)
    assert response.status_code == 201, response.text

    again = await _create_admin(settings, email.upper(), "Another harbour of 44 owls")
    assert again.exit_code != 0
    assert "Another harbour" not in again.output


@pytest.mark.slow
async def test_create_admin_refuses_a_weak_password(client: Client, settings: Settings) -> None:
    """A weak password is refused with a non-zero exit and an explanation; no admin exists
    afterwards."""
    for weak in ("password1234", "short", "admin@example.com"):
        email = "admin@example.com"
        result = await _create_admin(settings, email, weak)
        assert result.exit_code != 0, (weak, result.output)
        assert "weak" in result.output.lower() or "password" in result.output.lower()
        response = await client.post(f"{API}/auth/login", json={"email": email, "password": weak})
        assert_problem(response, 401, "invalid_credentials")
