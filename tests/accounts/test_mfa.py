"""TOTP multi-factor authentication: enrolment, the two-step sign-in, codes accepted once,
single-use recovery codes, turning MFA off, and staff operations refused without MFA."""

from __future__ import annotations

import base64
import re
import uuid
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.conftest import MovedClock
from accounts.support import (
    API,
    PASSWORD,
    Account,
    Client,
    Json,
    Mfa,
    assert_problem,
    bearer,
    enable_mfa,
    login,
    new_email,
    sign_up,
)
from conftest import SignIn
from emporium.accounts import service as account_service
from emporium.accounts.models import RecoveryCode, UserAccount
from emporium.accounts.protect import build_context
from emporium.core.config import Settings
from emporium.core.crypto.keys import load_key_file

ME = f"{API}/users/me"


async def _mfa_step(client: Client, account: Account, code: str) -> tuple[int, Json]:
    """Sign in with the password, then answer the challenge with ``code``."""
    pair = await login(client, account.email, account.password)
    assert pair == {"mfa_required": True, "mfa_token": pair["mfa_token"]}, pair
    response = await client.post(
        f"{API}/auth/login/mfa", json={"mfa_token": pair["mfa_token"], "code": code}
    )
    return response.status_code, response.json()


async def _enrolled(client: Client) -> tuple[Account, Mfa]:
    account = await sign_up(client)
    return account, await enable_mfa(client, account.headers)


async def test_enrolment_and_sign_in_with_totp(
    client: Client, session: AsyncSession, clock: MovedClock
) -> None:
    """Enrolment gives a 160-bit base32 secret and its otpauth URI; a wrong first code is
    refused; the right one turns MFA on and gives 10 distinct recovery codes of at least
    112 bits; from then on the password alone only earns an ``mfa_token``, and the token
    plus a current code earns a working session. Neither secret nor codes are stored in
    clear."""
    account = await sign_up(client)
    response = await client.post(f"{API}/auth/mfa/totp", headers=account.headers)
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["cache-control"]
    secret = response.json()["secret"]
    assert len(base64.b32decode(secret)) * 8 >= 160
    uri = urlsplit(response.json()["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    query = parse_qs(uri.query)
    assert query["secret"] == [secret]
    assert query["issuer"] == ["Emporium"]
    assert account.email.split("@")[0] in uri.path

    mfa = Mfa(secret=secret, recovery_codes=[], confirm_code="")
    wrong = f"{(int(mfa.code()) + 1) % 1_000_000:06d}"
    response = await client.post(
        f"{API}/auth/mfa/totp/confirm", json={"code": wrong}, headers=account.headers
    )
    assert_problem(response, 422, "invalid_mfa_code")
    assert (await client.get(ME, headers=account.headers)).json()["mfa_enabled"] is False
    response = await client.post(
        f"{API}/auth/mfa/totp/confirm", json={"code": mfa.code()}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    codes = response.json()["recovery_codes"]
    assert len(set(codes)) == 10
    for code in codes:
        assert len(base64.b32decode(code.replace("-", ""))) * 8 >= 112
    assert (await client.get(ME, headers=account.headers)).json()["mfa_enabled"] is True
    response = await client.post(f"{API}/auth/mfa/totp", headers=account.headers)
    assert_problem(response, 409, "mfa_already_enabled")

    clock.advance(30)
    status, body = await _mfa_step(client, account, mfa.code(at=clock.timestamp()))
    assert status == 200, body
    assert (await client.get(ME, headers=bearer(body["access_token"]))).status_code == 200

    stored = (await session.execute(text("SELECT * FROM user_account"))).mappings().one()
    assert stored["totp_secret_enc"]
    assert secret not in str(dict(stored))
    hashes = " ".join(await session.scalars(select(RecoveryCode.code_hash)))
    for code in codes:
        assert code.replace("-", "") not in hashes


async def test_a_totp_code_is_accepted_once(client: Client, clock: MovedClock) -> None:
    """The code that confirmed enrolment cannot sign in (same window); a fresh code signs
    in once and is refused the second time; one step of clock drift is tolerated, two are
    not."""
    account, mfa = await _enrolled(client)
    status, body = await _mfa_step(client, account, mfa.confirm_code)
    assert (status, body["code"]) == (401, "invalid_mfa_code")

    clock.advance(30)
    fresh = mfa.code(at=clock.timestamp())
    status, body = await _mfa_step(client, account, fresh)
    assert status == 200, body
    status, body = await _mfa_step(client, account, fresh)
    assert (status, body["code"]) == (401, "invalid_mfa_code")

    clock.advance(120)
    status, body = await _mfa_step(client, account, mfa.code(at=clock.timestamp(-60)))
    assert (status, body["code"]) == (401, "invalid_mfa_code")
    status, body = await _mfa_step(client, account, mfa.code(at=clock.timestamp(-30)))
    assert status == 200, body


async def test_enrolment_ends_every_other_session(client: Client) -> None:
    """Sessions opened with the password alone before MFA was turned on die at the
    confirmation (their access and refresh tokens are refused), the enrolling session lives
    on, and the session list shows only it."""
    account = await sign_up(client)
    before = await login(client, account.email)
    assert (await client.get(ME, headers=bearer(before["access_token"]))).status_code == 200
    await enable_mfa(client, account.headers)

    assert (await client.get(ME, headers=account.headers)).status_code == 200
    response = await client.get(ME, headers=bearer(before["access_token"]))
    assert_problem(response, 401, "session_ended")
    refresh = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": before["refresh_token"]}
    )
    assert refresh.status_code == 401, refresh.text
    listed = (await client.get(f"{API}/auth/sessions", headers=account.headers)).json()
    assert [s["current"] for s in listed] == [True]


async def test_recovery_codes_are_single_use(client: Client) -> None:
    """A recovery code replaces the TOTP once (typed in lower case without dashes too);
    the same code again is refused; another code still works."""
    account, mfa = await _enrolled(client)
    first, second = mfa.recovery_codes[:2]
    status, body = await _mfa_step(client, account, first.replace("-", "").lower())
    assert status == 200, body
    status, body = await _mfa_step(client, account, first)
    assert (status, body["code"]) == (401, "invalid_mfa_code")
    status, body = await _mfa_step(client, account, second)
    assert status == 200, body


async def test_the_mfa_token_is_single_use_short_lived_and_limited(
    client: Client, clock: MovedClock
) -> None:
    """An ``mfa_token`` works once, dies after a few minutes and after 5 wrong codes; a
    forged one is refused; none of them is a session."""
    account, mfa = await _enrolled(client)

    async def answer(token: str, code: str) -> tuple[int, Json]:
        response = await client.post(
            f"{API}/auth/login/mfa", json={"mfa_token": token, "code": code}
        )
        return response.status_code, response.json()

    token = (await login(client, account.email))["mfa_token"]
    assert (await client.get(ME, headers=bearer(token))).status_code == 401
    clock.advance(30)
    assert (await answer(token, mfa.code(at=clock.timestamp())))[0] == 200
    clock.advance(30)
    status, body = await answer(token, mfa.code(at=clock.timestamp()))
    assert (status, body["code"]) == (401, "invalid_mfa_token")

    token = (await login(client, account.email))["mfa_token"]
    clock.advance(6 * 60)
    status, body = await answer(token, mfa.code(at=clock.timestamp()))
    assert (status, body["code"]) == (401, "invalid_mfa_token")

    token = (await login(client, account.email))["mfa_token"]
    for _ in range(5):
        assert (await answer(token, "000000"))[1]["code"] == "invalid_mfa_code"
    clock.advance(30)
    status, body = await answer(token, mfa.code(at=clock.timestamp()))
    assert (status, body["code"]) == (401, "invalid_mfa_token")

    status, body = await answer("emp_mfa_" + "A" * 43, mfa.recovery_codes[0])
    assert (status, body["code"]) == (401, "invalid_mfa_token")


async def test_disabling_mfa_needs_fresh_proof(client: Client, clock: MovedClock) -> None:
    """Turning MFA off needs exactly one of a current code or the password; wrong proof is
    refused; afterwards the password alone signs in, other sessions are revoked, and the old
    recovery codes are gone."""
    account, mfa = await _enrolled(client)
    clock.advance(30)
    # The same code, not a code of "now": real time may cross a 30 s step in between.
    used = mfa.code(at=clock.timestamp())
    status, other = await _mfa_step(client, account, used)
    assert status == 200
    url = f"{API}/auth/mfa/totp"
    for body in ({}, {"code": "123456", "password": PASSWORD}, {"code": "000000"}):
        response = await client.request("DELETE", url, json=body, headers=account.headers)
        assert_problem(response, 422, "invalid_mfa_code")
    response = await client.request(
        "DELETE", url, json={"password": "not the password"}, headers=account.headers
    )
    assert_problem(response, 401, "invalid_credentials")
    response = await client.request("DELETE", url, json={"code": used}, headers=account.headers)
    assert_problem(response, 422, "invalid_mfa_code")  # the step already used above
    clock.advance(30)
    response = await client.request(
        "DELETE", url, json={"code": mfa.code(at=clock.timestamp())}, headers=account.headers
    )
    assert response.status_code == 204, response.text

    assert (await client.get(ME, headers=account.headers)).json()["mfa_enabled"] is False
    assert (await client.get(ME, headers=bearer(other["access_token"]))).status_code == 401
    assert "access_token" in await login(client, account.email)
    response = await client.request(
        "DELETE", url, json={"password": PASSWORD}, headers=account.headers
    )
    assert_problem(response, 409, "mfa_not_enabled")

    again = await enable_mfa(client, account.headers, at=clock.timestamp())
    assert not set(again.recovery_codes) & set(mfa.recovery_codes)
    status, body = await _mfa_step(client, account, mfa.recovery_codes[0])
    assert (status, body["code"]) == (401, "invalid_mfa_code")
    response = await client.request(
        "DELETE", url, json={"password": PASSWORD}, headers=account.headers
    )
    assert response.status_code == 204, response.text


async def test_staff_and_admins_without_mfa_are_refused(
    client: Client, sign_in: SignIn, admin_headers: dict[str, str]
) -> None:
    """Staff and admin accounts without MFA get 403 ``mfa_required`` on staff and admin
    routes, while their own profile and the enrolment routes stay open; a staff session
    opened with the password alone before MFA was turned on ends with the enrolment."""
    staff = await sign_in(roles=["staff"], mfa=False)
    response = await client.post(f"{API}/categories", json={"name": "Nope"}, headers=staff)
    assert_problem(response, 403, "mfa_required")
    admin = await sign_in(roles=["admin", "staff"], mfa=False)
    assert_problem(await client.get(f"{API}/users", headers=admin), 403, "mfa_required")
    assert_problem(await client.get(f"{API}/api-keys", headers=admin), 403, "mfa_required")
    assert (await client.get(ME, headers=admin)).status_code == 200
    customer = await sign_in(mfa=True)
    response = await client.post(f"{API}/categories", json={"name": "Nope"}, headers=customer)
    assert_problem(response, 403, "forbidden")

    email = new_email("staffer")
    body = {"email": email, "password": PASSWORD, "roles": ["staff"]}
    assert (await client.post(f"{API}/users", json=body, headers=admin_headers)).status_code == 201
    early = bearer((await login(client, email))["access_token"])
    enrolling = bearer((await login(client, email))["access_token"])
    await enable_mfa(client, enrolling)
    response = await client.post(f"{API}/categories", json={"name": "Early"}, headers=early)
    assert_problem(response, 401, "session_ended")
    response = await client.post(f"{API}/categories", json={"name": "Ok"}, headers=enrolling)
    assert response.status_code == 201, response.text


async def test_a_new_password_does_not_bypass_mfa(
    client: Client, session: AsyncSession, settings: Settings
) -> None:
    """After the password is set anew (as an operator or a reset does), the new password
    still only earns an ``mfa_token``."""
    account, _ = await _enrolled(client)
    ctx = build_context(settings, load_key_file(settings.key_file))
    new_password = "Velvet comet 42 brews marmalade"
    await account_service.set_password(session, ctx, account.email, new_password)
    await session.commit()
    pair = await login(client, account.email, new_password)
    assert set(pair) == {"mfa_required", "mfa_token"}
    assert re.fullmatch(r"emp_mfa_[A-Za-z0-9_-]{43}", pair["mfa_token"])
    user = await session.scalar(select(UserAccount).where(UserAccount.id == uuid.UUID(account.id)))
    assert user is not None
    assert user.mfa_enabled
