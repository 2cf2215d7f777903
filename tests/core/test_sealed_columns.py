"""Sealed columns are declared on the models (``core.db.sealed``), so that key rotation, the
key-set check and the at-rest tests find every one: a room that stores personal data or a
secret in a column of its own cannot forget to register it."""

from __future__ import annotations

from emporium.cli import protected_columns
from emporium.core.db import SEALED, Base
from emporium.models import import_all_models


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
    }
