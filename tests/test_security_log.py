"""The security log: every flow that handles a secret or personal data is pushed through a
real server with canary values, and the server's whole log output is searched for them.
Security events must be there, as JSON with the OWASP vocabulary names, the request id,
the user id and the client address, in UTC; passwords, tokens, keys, TOTP secrets,
recovery codes and clear personal data must not."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from servers import EMPORIUM, free_port, server_env, wait_ready

TAG = secrets.token_hex(6)
EMAIL = f"canary.{TAG}@example.com"
ADMIN_EMAIL = f"canary.admin.{TAG}@example.com"
GHOST_EMAIL = f"canary.ghost.{TAG}@example.com"
PASSWORD = f"Canary {TAG} lantern drifts 9"
WRONG_PASSWORD = f"Wrong canary {TAG} kettle 7"
NEW_PASSWORD = f"Fresh canary {TAG} orbit 5"
FIRST, LAST = f"Canaryfirst{TAG}", f"Canarylast{TAG}"
PHONE_DIGITS = str(secrets.randbelow(9_000_000) + 1_000_000)
STREET = f"{TAG} Canary Street"


class Server:
    """``emporium serve`` on a fresh SQLite database, its stderr kept in a file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = folder / "server.log"
        # The flows below sign in many times from one address: route rate limits are off
        # (their own tests prove them and their log lines).
        self.env = server_env(
            f"sqlite+aiosqlite:///{folder / 'e.db'}",
            os.environ["EMPORIUM_KEY_FILE"],
            route_limits=False,
            log_level="DEBUG",
            login_delay_seconds="0",
        )

    def run(self, *args: str, stdin: str = "") -> str:
        """Run an ``emporium`` command; its output (which is log output too)."""
        done = subprocess.run(
            [EMPORIUM, *args],
            input=stdin,
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout + done.stderr

    def url(self, path: str) -> str:
        """The URL of an API path."""
        return f"{self.base}/api/v1{path}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Server, list[str]]]:
    """A running server, and the command outputs; the log is complete after the test."""
    server = Server(tmp_path)
    outputs = [server.run("db", "upgrade")]
    outputs.append(
        server.run(
            "users",
            "create-admin",
            "--email",
            ADMIN_EMAIL,
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
    )
    with server.log.open("wb") as log:
        proc = subprocess.Popen(
            [EMPORIUM, "serve", "--port", str(server.port)],
            cwd=tmp_path,
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(server.base, proc, time.monotonic() + 60)
            yield server, outputs
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _customer_flows(http: httpx.Client, s: Server, canaries: list[str]) -> None:
    body = {
        "email": EMAIL,
        "password": PASSWORD,
        "first_name": FIRST,
        "last_name": LAST,
        "phone": f"+1 555 {PHONE_DIGITS}",
    }
    _ok(http.post(s.url("/auth/register"), json=body), 201)
    http.post(s.url("/auth/register"), json=body)  # duplicate: 409
    http.post(s.url("/auth/register"), json={**body, "email": GHOST_EMAIL, "password": EMAIL})
    for _ in range(11):  # enough to lock the account
        http.post(s.url("/auth/login"), json={"email": GHOST_EMAIL, "password": WRONG_PASSWORD})
    pair = _ok(http.post(s.url("/auth/login"), json={"email": EMAIL, "password": PASSWORD}))
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    address = {
        "name": FIRST,
        "line1": STREET,
        "city": "Oslo",
        "postal_code": "0150",
        "country": "NO",
    }
    _ok(http.post(s.url("/users/me/addresses"), json=address, headers=auth), 201)
    _ok(http.get(s.url("/users/me/export"), headers=auth))
    new = _ok(http.post(s.url("/auth/refresh"), json={"refresh_token": pair["refresh_token"]}))
    http.post(s.url("/auth/refresh"), json={"refresh_token": pair["refresh_token"]})  # reuse
    body = {"current_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD}
    http.post(s.url("/auth/password"), json=body, headers=auth)
    canaries += [pair["access_token"], pair["refresh_token"], new["refresh_token"]]


def _admin_flows(http: httpx.Client, s: Server, canaries: list[str]) -> None:
    pair = _ok(http.post(s.url("/auth/login"), json={"email": ADMIN_EMAIL, "password": PASSWORD}))
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    assert http.get(s.url("/users"), headers=auth).status_code == 403  # mfa_required
    secret = _ok(http.post(s.url("/auth/mfa/totp"), headers=auth))["secret"]
    http.post(s.url("/auth/mfa/totp/confirm"), json={"code": "000000"}, headers=auth)
    confirm = {"code": pyotp.TOTP(secret).now()}
    codes = _ok(http.post(s.url("/auth/mfa/totp/confirm"), json=confirm, headers=auth))
    recovery = codes["recovery_codes"]
    challenge = _ok(
        http.post(s.url("/auth/login"), json={"email": ADMIN_EMAIL, "password": PASSWORD})
    )
    step = {"mfa_token": challenge["mfa_token"], "code": recovery[1]}
    http.post(s.url("/auth/login/mfa"), json={**step, "code": "123456"})
    mfa_pair = _ok(http.post(s.url("/auth/login/mfa"), json=step))
    auth = {"Authorization": f"Bearer {mfa_pair['access_token']}"}
    key = _ok(
        http.post(
            s.url("/api-keys"), json={"name": "canary", "scopes": ["orders:read"]}, headers=auth
        ),
        201,
    )
    http.post(s.url("/categories"), json={"name": "K"}, headers={"X-API-Key": key["key"]})
    http.post(s.url("/categories"), json={"name": "Q"}, params={"api_key": key["key"]})
    forged = "emp_key_" + secrets.token_urlsafe(32)
    http.post(s.url("/categories"), json={"name": "F"}, headers={"X-API-Key": forged})
    _ok(http.delete(s.url(f"/api-keys/{key['id']}"), headers=auth), 204)
    _promotion_flow(http, s, auth)
    http.request("DELETE", s.url("/auth/mfa/totp"), json={"password": WRONG_PASSWORD}, headers=auth)
    canaries += [secret, *recovery, *(c.replace("-", "") for c in recovery), key["key"]]
    canaries += [forged, challenge["mfa_token"], pair["access_token"], mfa_pair["refresh_token"]]


def _promotion_flow(http: httpx.Client, s: Server, auth: dict[str, str]) -> None:
    """A promotion created, changed and deleted by the admin: three ``info`` events."""
    body = {"name": "Canary sale", "code": "canary-10", "type": "percentage", "value": 1000}
    made = _ok(http.post(s.url("/promotions"), json=body, headers=auth), 201)
    url = s.url(f"/promotions/{made['id']}")
    _ok(http.patch(url, json={"value": 1500}, headers=auth))
    _ok(http.delete(url, headers=auth), 204)


@pytest.mark.slow
def test_no_secret_or_personal_data_reaches_the_logs(server: tuple[Server, list[str]]) -> None:
    """Push canaries through registration, sign-in failures and lock, refresh-token reuse,
    addresses, export, MFA enrolment and sign-in, recovery codes and API keys; then search
    every line the server and the commands wrote."""
    s, outputs = server
    canaries = [
        EMAIL,
        ADMIN_EMAIL,
        GHOST_EMAIL,
        PASSWORD,
        WRONG_PASSWORD,
        NEW_PASSWORD,
        FIRST,
        LAST,
        PHONE_DIGITS,
        STREET,
    ]
    with httpx.Client(timeout=30) as http:
        _customer_flows(http, s, canaries)
        _admin_flows(http, s, canaries)
    time.sleep(0.5)  # let the server flush its last lines
    log = s.log.read_text() + "".join(outputs)
    leaks = [c for c in canaries if c.lower() in log.lower()]
    assert not leaks, f"found in the logs: {leaks}"

    events = [json.loads(line) for line in log.splitlines() if '"security_event"' in line]
    names = {e["event"] for e in events}
    assert names >= {
        "authn_login_fail",
        "authn_login_lock",
        "authn_login_success",
        "authn_token_reuse",
        "authz_fail",
        "authn_token_created",
        "authn_token_revoked",
        "user_updated",
        "promotion_created",
        "promotion_updated",
        "promotion_deleted",
    }, names
    for event in events:
        assert {"request_id", "user_id", "client_ip", "timestamp"} <= event.keys(), event
        assert event["timestamp"].endswith("Z"), event
        assert event["client_ip"] == "127.0.0.1", event
    assert any(e["event"] == "authz_fail" and e["user_id"] for e in events)
    promotions = [e for e in events if e["event"].startswith("promotion_")]
    assert len(promotions) == 3, promotions
    assert all(e["level"] == "info" and e["user_id"] and e["promotion_id"] for e in promotions)
    assert len({e["promotion_id"] for e in promotions}) == 1
