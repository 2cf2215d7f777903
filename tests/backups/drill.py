"""Shared steps of the backup tests: a customer with TOTP and an address, reading what
must survive a restore, running the ``emporium`` command."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pyotp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from emporium.core.config import Settings
from factories import Client
from servers import EMPORIUM, server_env

API = "/api/v1"
PASSWORD = "Quartz lantern drifts over 9 fjords"
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Marylebone Road",
    "city": "London",
    "postal_code": "NW1 5LR",
    "country": "GB",
}
Json = dict[str, Any]


async def customer_with_totp(client: Client, email: str) -> str:
    """Register ``email``, turn TOTP on and add :data:`ADDRESS`; returns the TOTP secret."""
    body = {"email": email, "password": PASSWORD, "first_name": "Ada"}
    assert (await client.post(f"{API}/auth/register", json=body)).status_code == 201
    login = await client.post(f"{API}/auth/login", json={"email": email, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    started = (await client.post(f"{API}/auth/mfa/totp", headers=headers)).json()
    code = {"code": pyotp.TOTP(started["secret"]).now()}
    assert (
        await client.post(f"{API}/auth/mfa/totp/confirm", headers=headers, json=code)
    ).is_success
    added = await client.post(f"{API}/users/me/addresses", headers=headers, json=ADDRESS)
    assert added.status_code == 201, added.text
    return str(started["secret"])


async def sign_in_with_totp(client: Client, email: str, secret: str) -> dict[str, str]:
    """Sign in with the password and a TOTP code (of the next step: the current one was
    spent at enrolment and is never accepted twice)."""
    login = await client.post(f"{API}/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert login.json()["mfa_required"] is True
    code = pyotp.TOTP(secret).at(time.time() + 30)
    answer = await client.post(
        f"{API}/auth/login/mfa", json={"mfa_token": login.json()["mfa_token"], "code": code}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


LEDGER = "SELECT variant_id, kind, delta, stock_after FROM stock_movement ORDER BY id"
ORDERS = (
    "SELECT id, number, status, total, paid_total, refunded_total FROM customer_order ORDER BY id"
)
STOCK = "SELECT id, stock FROM variant ORDER BY id"


async def rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Every row of ``sql`` on a database, as plain tuples."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


def emporium(settings: Settings, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the ``emporium`` command with ``settings`` in its environment."""
    values = {
        "backup_recipients": ",".join(settings.backup_recipients),
        "backup_destinations": ",".join(settings.backup_destinations),
        "backup_spool_dir": str(settings.backup_spool_dir),
        "backup_s3_endpoint_url": settings.backup_s3_endpoint_url or "",
        "backup_s3_region": settings.backup_s3_region or "",
        "backup_s3_access_key_id": settings.backup_s3_access_key_id or "",
    }
    secret = settings.backup_s3_secret_access_key
    if secret is not None:
        values["backup_s3_secret_access_key"] = secret.get_secret_value()
    env = server_env(settings.database_url, settings.key_file, **values)  # type: ignore[arg-type]
    return subprocess.run(
        [EMPORIUM, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180
    )
