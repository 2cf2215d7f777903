"""A large catalog written straight into a SQLite file (thousands of products in a second),
for tests that need the cost of real searches."""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from pathlib import Path

WORDS = [
    "lamp",
    "chair",
    "table",
    "desk",
    "shelf",
    "linen",
    "cotton",
    "oak",
    "walnut",
    "brass",
    "steel",
    "glass",
    "wool",
    "leather",
    "vintage",
    "modern",
    "rustic",
    "compact",
    "portable",
    "classic",
    "premium",
    "soft",
    "bright",
    "warm",
    "cool",
]


def fill(database: Path, products: int, *, common_word: str = "emporium") -> None:
    """Add ``products`` published products (one variant each) to the migrated SQLite file
    ``database``; every product's title and description contain ``common_word``."""
    rng = random.Random(7)
    now = "2026-01-01 00:00:00.000000"
    category = uuid.uuid4().hex
    with sqlite3.connect(database) as db:
        db.execute(
            "INSERT INTO category (id, name, slug, parent_id, description, created_at, "
            "updated_at) VALUES (?, 'Big', ?, NULL, '', ?, ?)",
            (category, f"big-{category[:8]}", now, now),
        )
        product_rows, variant_rows = [], []
        for n in range(products):
            words = rng.sample(WORDS, 4)
            title = f"{common_word} {' '.join(words)} {n}"
            description = " ".join(rng.choices(WORDS, k=40)) + f" {common_word}"
            pid = uuid.uuid4().hex
            price = rng.randint(100, 100_000)
            product_rows.append(
                (
                    pid,
                    f"big-{n}-{pid[:6]}",
                    title,
                    description,
                    category,
                    "Acme",
                    json.dumps(words[:2]),
                    title.lower(),
                    " ".join(words[:2]) + " acme",
                    description.lower(),
                    1,
                    "[]",
                    0.0,
                    0,
                    price,
                    "USD",
                    None,
                    now,
                    now,
                )
            )
            variant_rows.append(
                (
                    uuid.uuid4().hex,
                    pid,
                    f"BIG-{n}-{pid[:6]}",
                    "Default",
                    "{}",
                    price,
                    None,
                    "USD",
                    5,
                    0,
                    now,
                    now,
                )
            )
        db.executemany(
            "INSERT INTO product (id, slug, title, description, category_id, brand, tags, "
            "search_title, keywords, search_text, published, images, rating_average, "
            "review_count, price_min, currency, external_ref, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            product_rows,
        )
        db.executemany(
            "INSERT INTO variant (id, product_id, sku, title, options, price, "
            "compare_at_price, currency, stock, position, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            variant_rows,
        )
