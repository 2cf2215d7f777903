"""The catalog room: categories, products, variants, images, tags and text search.

Owns the tables ``category``, ``product``, ``product_tag`` and ``variant`` (and the search
index: ``product_fts`` on SQLite, ``product.search_vector`` on PostgreSQL).
May import: ``emporium.accounts`` (the routes' identity guards), ``emporium.jobs`` (domain
events), ``emporium.audit`` (product and price changes) and ``emporium.core``.
Publishes: ``service`` (business verbs used by routes,
importers and the reviews room), ``queries`` (reads), ``reads.ProductReads`` (the product
read behind the cache, the ``products`` dependency), ``cache.ProductCache`` (the per-process
LRU), ``changes`` (``product_changed`` and the ORM hook that records product changes for
cache eviction), ``schemas`` and ``routes.catalog_router``.
"""
