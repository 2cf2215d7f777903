"""Importers: bring catalogs from other formats into Emporium, idempotently.

Each importer parses and validates its whole input first (every problem reported with file
and line), and only then writes, in one transaction. May import: ``emporium.reviews``,
``emporium.orders``, ``emporium.inventory``, ``emporium.catalog``, ``emporium.accounts``
and ``emporium.core``. Publishes ``dummyjson``, ``shopify`` and ``demo`` (the generated demo
catalog), all run through :func:`emporium.importers.common.write_catalog`; ``routes`` serves
the Shopify importer over HTTP (``POST /imports/shopify-csv``, staff).
"""
