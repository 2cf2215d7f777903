"""Importing DummyJSON people: accounts a shop can use, and nothing it must not hold."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from accounts.support import PASSWORD, Client, assert_problem
from emporium.accounts.models import Address, UserAccount
from emporium.cli import main
from emporium.core.config import Settings
from emporium.core.db.base import Base, create_engine, create_sessionmaker
from emporium.reviews.models import Review


def _people(datasets_dir: Path) -> list[dict[str, object]]:
    data: list[dict[str, object]] = json.loads(
        (datasets_dir / "dummyjson-users.json").read_text(encoding="utf-8")
    )
    return data


async def _import(settings: Settings, datasets_dir: Path) -> str:
    env = {"EMPORIUM_DATABASE_URL": settings.database_url}
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["import", "dummyjson", str(datasets_dir)], env=env
    )
    assert result.exit_code == 0, result.output
    return result.output


async def _all_text(settings: Settings) -> str:
    """Every value of every column of every table, as one string."""
    engine = create_engine(settings)
    parts: list[str] = []
    try:
        async with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                for row in await conn.execute(text(f"SELECT * FROM {table.name}")):  # noqa: S608
                    parts.extend(str(v) for v in row)
    finally:
        await engine.dispose()
    return "\n".join(parts)


@pytest.mark.slow
async def test_people_become_accounts_without_what_a_shop_must_not_keep(
    client: Client, settings: Settings, datasets_dir: Path
) -> None:
    """208 accounts with the right roles and an address each; reviews point at their
    authors (one per author and product: the file's one repeated pair stays unlinked); no
    e-mail, phone, card number, IBAN, SSN, wallet, IP or password of the file is stored in
    clear text; a second import changes nothing."""
    output = await _import(settings, datasets_dir)
    assert "users: 208 created" in output
    people = _people(datasets_dir)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            roles = Counter(tuple(r) for r in await session.scalars(select(UserAccount.roles)))
            addresses = await session.scalar(select(func.count()).select_from(Address))
            linked = await session.scalar(
                select(func.count()).select_from(Review).where(Review.author_id.is_not(None))
            )
            reviews = await session.scalar(select(func.count()).select_from(Review))
    finally:
        await engine.dispose()
    source = Counter(str(p["role"]) for p in people)
    assert roles == {
        ("admin", "staff"): source["admin"],
        ("staff",): source["moderator"],
        ("customer",): source["user"],
    }
    assert addresses == len(people)
    assert reviews == 582
    products = json.loads((datasets_dir / "dummyjson-products.json").read_text(encoding="utf-8"))
    pairs = {(p["id"], r["reviewerEmail"]) for p in products for r in p["reviews"]}
    assert linked == len(pairs) == 581
    dump = (await _all_text(settings)).lower()
    for person in people:
        bank = person["bank"]
        assert isinstance(bank, dict)
        secrets = [
            person["email"],
            person["phone"],
            person["ssn"],
            person["password"],
            person["ip"],
            bank["cardNumber"],
            bank["iban"],
            person["macAddress"],
        ]
        for value in secrets:
            assert str(value).lower() not in dump, value
    assert "nothing changed" in await _import(settings, datasets_dir)


@pytest.mark.slow
async def test_imported_people_sign_in_only_after_a_password_is_set(
    client: Client, settings: Settings, datasets_dir: Path
) -> None:
    """The file's plain-text password does not work; `users set-password` makes one that
    does, and the person then sees their own imported profile and address."""
    await _import(settings, datasets_dir)
    person = _people(datasets_dir)[0]
    email, file_password = str(person["email"]), str(person["password"])
    for password in (file_password, PASSWORD):
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert_problem(response, 401, "invalid_credentials")
    env = {"EMPORIUM_DATABASE_URL": settings.database_url}
    result = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["users", "set-password", "--email", email, "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
    )
    assert result.exit_code == 0, result.output
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    profile = (await client.get("/api/v1/users/me", headers=headers)).json()
    assert profile["email"] == email
    assert profile["phone"] == person["phone"]
    expected_roles = {"admin": ["admin", "staff"], "moderator": ["staff"], "user": ["customer"]}
    assert profile["roles"] == expected_roles[str(person["role"])]
    address = person["address"]
    assert isinstance(address, dict)
    mine = (await client.get("/api/v1/users/me/addresses", headers=headers)).json()
    assert mine[0]["line1"] == address["address"]
    assert mine[0]["country"] == "US"
