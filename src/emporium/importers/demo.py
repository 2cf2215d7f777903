"""A generated demo catalog: plausible categories, products with variants, and reviews.

Made by our own code from word lists (no third-party data), deterministic for a seed, so
``emporium serve --demo`` always shows the same shop and benchmarks can make 100,000
products. Not cryptographic randomness: it only picks words.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from emporium.catalog.content import make_slug
from emporium.catalog.upsert import ImportProduct, ImportVariant
from emporium.importers.common import ImportReview

TREE: dict[str, dict[str, tuple[str, ...]]] = {
    "Apparel": {
        "T-Shirts": ("Tee", "Crew Neck Tee", "Pocket Tee", "Henley"),
        "Hoodies": ("Hoodie", "Zip Hoodie", "Sweatshirt"),
        "Jackets": ("Rain Jacket", "Puffer Jacket", "Denim Jacket"),
    },
    "Home": {
        "Kitchen": ("Chef's Knife", "Cast Iron Skillet", "Cutting Board", "Pour-Over Kettle"),
        "Lighting": ("Desk Lamp", "Pendant Light", "Floor Lamp"),
        "Textiles": ("Throw Blanket", "Linen Pillow Cover", "Bath Towel"),
    },
    "Outdoor": {
        "Camping": ("Tent", "Sleeping Bag", "Camp Stove", "Headlamp"),
        "Cycling": ("Bike Light", "Saddle Bag", "Water Bottle"),
    },
    "Electronics": {
        "Audio": ("Wireless Earbuds", "Bookshelf Speaker", "Headphones"),
        "Accessories": ("USB-C Cable", "Power Bank", "Laptop Stand", "Phone Case"),
    },
}
ADJECTIVES = (
    "Classic",
    "Everyday",
    "Heritage",
    "Nordic",
    "Urban",
    "Trail",
    "Studio",
    "Coastal",
    "Alpine",
    "Essential",
    "Vintage",
    "Compact",
    "Premium",
    "Organic",
    "Featherweight",
)
MATERIALS = (
    "Cotton",
    "Merino",
    "Walnut",
    "Oak",
    "Steel",
    "Ceramic",
    "Linen",
    "Recycled",
    "Bamboo",
    "Aluminium",
    "Canvas",
    "Leather",
)
BRANDS = (
    "Northwind",
    "Fjell & Co",
    "Larkspur",
    "Brightline",
    "Kestrel",
    "Maple Row",
    "Tidewater",
    "Ironbark",
    "Solstice",
    "Wren Works",
)
COLORS = ("Black", "White", "Navy", "Olive", "Sand", "Rust")
SIZES = ("XS", "S", "M", "L", "XL")
PRAISE = (
    "Exactly as described.",
    "Great value for the price.",
    "Well made and sturdy.",
    "Arrived quickly, very happy.",
    "Bought a second one as a gift.",
    "Looks even better in person.",
)
CRITIQUE = (
    "Runs a little small.",
    "The color is darker than the photos.",
    "Took a while to arrive.",
    "Good, but the packaging was damaged.",
    "Not what I expected.",
)
FIRST = ("Ava", "Noah", "Mia", "Liam", "Zoe", "Ethan", "Léa", "Mateo", "Yuki", "Amara", "Jonas")
LAST = ("Smith", "García", "Okafor", "Nguyen", "Müller", "Rossi", "Kowalski", "Haddad", "Berg")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _variants(rng: random.Random, sku_base: str, category: str) -> list[ImportVariant]:
    base_price = rng.randrange(5, 400) * 100 + rng.choice((0, 50, 95, 99))
    if category in ("T-Shirts", "Hoodies", "Jackets"):
        colors = rng.sample(COLORS, rng.randint(1, 2))
        sizes = SIZES[rng.randint(0, 1) : rng.randint(3, 5)]
        combos = [(c, s) for c in colors for s in sizes]
        return [
            ImportVariant(
                sku=f"{sku_base}-{c[:3].upper()}-{s}",
                title=f"{c} / {s}",
                options={"Color": c, "Size": s},
                price=base_price,
                stock=rng.randint(0, 40),
                compare_at_price=base_price + 1000 if rng.random() < 0.2 else None,
            )
            for c, s in combos
        ]
    colors = rng.sample(COLORS, rng.randint(1, 3))
    return [
        ImportVariant(
            sku=f"{sku_base}-{c[:3].upper()}",
            title=c,
            options={"Color": c},
            price=base_price + n * 500,
            stock=rng.choice((0, 3, 10, 25, 100)),
        )
        for n, c in enumerate(colors)
    ]


def _description(rng: random.Random, title: str, material: str) -> str:
    return (
        f"<p>The <strong>{title}</strong> is made from {material.lower()} and built to last.</p>"
        f"<ul><li>{rng.choice(PRAISE)}</li><li>Designed for everyday use</li></ul>"
    )


def iter_products(count: int, *, seed: int = 7, prefix: str = "demo") -> Iterator[ImportProduct]:
    """Yield ``count`` generated products, the same ones for the same seed and prefix."""
    rng = random.Random(seed)
    leaves = [(root, leaf, nouns) for root, kids in TREE.items() for leaf, nouns in kids.items()]
    for n in range(count):
        root, leaf, nouns = leaves[n % len(leaves)]
        material, noun = rng.choice(MATERIALS), rng.choice(nouns)
        title = f"{rng.choice(ADJECTIVES)} {material} {noun}"
        brand = rng.choice(BRANDS)
        yield ImportProduct(
            external_ref=f"{prefix}:{n}",
            title=title,
            slug=f"{make_slug(title)}-{n}",
            description=_description(rng, title, material),
            category_path=[root, leaf],
            brand=brand,
            tags=[leaf.lower(), material.lower(), root.lower()],
            images=[
                {"url": f"https://images.example.com/{prefix}/{n}/{i}.jpg", "alt": title}
                for i in range(1, rng.randint(2, 4))
            ],
            variants=_variants(rng, f"{prefix.upper()}-{n:06d}", leaf),
            published=True,
            created_at=EPOCH + timedelta(minutes=n * 7),
        )


def _reviews(rng: random.Random, product: ImportProduct) -> list[ImportReview]:
    reviews = []
    for i in range(rng.choice((0, 1, 2, 3, 5))):
        rating = rng.choices((1, 2, 3, 4, 5), weights=(1, 1, 2, 4, 6))[0]
        body = rng.choice(PRAISE if rating >= 4 else CRITIQUE)
        reviews.append(
            ImportReview(
                external_ref=f"{product.external_ref}:review:{i}",
                product_ref=product.external_ref,
                rating=rating,
                body=body,
                title=body.split(",")[0].rstrip("."),
                author_name=f"{rng.choice(FIRST)} {rng.choice(LAST)[0]}.",
                created_at=(product.created_at or EPOCH) + timedelta(days=rng.randint(1, 200)),
            )
        )
    return reviews


def generate(count: int = 120, *, seed: int = 7) -> tuple[list[ImportProduct], list[ImportReview]]:
    """The demo catalog: ``count`` products over 10 categories, with reviews."""
    rng = random.Random(seed + 1)
    products = list(iter_products(count, seed=seed))
    reviews = [r for p in products for r in _reviews(rng, p)]
    return products, reviews
