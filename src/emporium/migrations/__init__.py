"""Alembic migrations: one linear history, hand-checked, both dialects."""
