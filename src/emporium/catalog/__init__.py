"""The catalog room: categories, products, variants, images, tags and text search.

Owns the tables ``category``, ``product``, ``product_tag`` and ``variant`` (and the search
index: ``product_fts`` on SQLite, ``product.search_vector`` and its GIN and covering
indexes on PostgreSQL).
May import: ``emporium.accounts`` (the routes' identity guards), ``emporium.jobs`` (domain
events), ``emporium.audit`` (product and price changes) and ``emporium.core``.
Publishes: ``service`` (business verbs used by routes,
importers and the reviews room), ``queries`` (reads), ``reads.ProductReads`` (the product
read and the listing pages, the ``products`` dependency), ``cache.ProductCache`` (the
per-process LRU) and ``cache.CategoryTree`` (category subtrees), ``changes``
(``product_changed`` and the ORM hook that records product and category changes for cache
eviction), ``schemas`` and ``routes.catalog_router``.
"""
