"""Sealed columns are declared on the models (``core.db.base.sealed``), so that key rotation, the
key-set check and the at-rest tests find every one: a room that stores personal data or a
secret in a column of its own cannot forget to register it."""

from __future__ import annotations

import uuid

import pytest

from emporium.accounts.models import UserAccount
from emporium.accounts.protect import Vault
from emporium.cli import protected_columns
from emporium.core.crypto.keys import generate_keyring
from emporium.core.crypto.sealing import DecryptionError
from emporium.core.db.base import SEALED, Base
from emporium.models import import_all_models
from emporium.orders.models import Order


def test_every_encrypted_column_is_declared_sealed() -> None:
    import_all_models()
    declared = {
        (model.__tablename__, attribute): name
        for model, columns in protected_columns()
        for attribute, name in columns.items()
    }
    ciphertext_columns = {
        (table.name, column.key)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if column.key.endswith("_enc")
    }
    # The naming rule and the declaration agree: every ``*_enc`` column is sealed and
    # every sealed column is named ``*_enc``.
    assert set(declared) == ciphertext_columns
    assert all(
        column.info[SEALED] == declared[(table.name, column.key)]
        for table in Base.metadata.tables.values()
        for column in table.columns
        if SEALED in column.info
    )
    # The names bound into the ciphertexts are the ones the rooms seal with.
    assert declared == {
        ("auth_session", "ip_enc"): "ip",
        ("cart", "billing_address_enc"): "billing_address",
        ("cart", "email_enc"): "email",
        ("cart", "shipping_address_enc"): "shipping_address",
        ("address", "data_enc"): "data",
        ("customer_order", "billing_address_enc"): "billing_address",
        ("customer_order", "email_enc"): "email",
        ("customer_order", "shipping_address_enc"): "shipping_address",
        ("user_account", "email_enc"): "email",
        ("user_account", "first_name_enc"): "first_name",
        ("user_account", "last_name_enc"): "last_name",
        ("user_account", "phone_enc"): "phone",
        ("user_account", "totp_secret_enc"): "totp_secret",
        ("webhook_endpoint", "secret_enc"): "secret",
        ("payment", "client_secret_enc"): "client_secret",
        ("gift_card", "note_enc"): "note",
    }


def test_the_vault_seals_a_mapped_column_with_its_declared_binding() -> None:
    """``seal_column`` binds the column's table and declared name, exactly as the low-level
    ``seal`` with those strings does; a column not declared sealed is refused."""
    vault = Vault(ring=generate_keyring())
    row = uuid.uuid4()
    sealed = vault.seal_column(Order.email_enc, row, "ada@example.com")
    assert vault.open("customer_order", "email", row, sealed) == "ada@example.com"
    assert vault.open_column(Order.email_enc, row, sealed) == "ada@example.com"
    with pytest.raises(DecryptionError):
        vault.open_column(UserAccount.email_enc, row, sealed)  # another column's value
    with pytest.raises(TypeError):
        vault.seal_column(Order.number, row, "not sealed")
