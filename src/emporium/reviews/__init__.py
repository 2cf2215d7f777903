"""The reviews room: product reviews, ratings and the product's rating aggregates.

Owns the table ``review``. May import: ``emporium.orders`` (was the purchase paid?),
``emporium.catalog`` (to keep ``rating_average`` and ``review_count`` on the product),
``emporium.accounts``, ``emporium.jobs`` (domain events) and ``emporium.core``. Publishes
``queries`` (reads), ``service`` and ``writing`` (writes) and ``routes.reviews_router``.
"""
