"""The reviews room: product reviews, ratings and the product's rating aggregates.

Owns the table ``review``. May import: ``emporium.catalog`` (to keep ``rating_average`` and
``review_count`` on the product) and ``emporium.core``. Publishes ``service`` and
``routes.reviews_router``.
"""
