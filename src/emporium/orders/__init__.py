"""Orders: the cart, checkout (``place_order``), the order lifecycle and idempotency keys.

Checkout prices every line from the database and takes stock through ``inventory`` in the
request's one transaction; order status moves only along ``lifecycle.TRANSITIONS``, each move
a conditional update recorded with who made it and when. ``POST /orders`` honours
``Idempotency-Key`` with Stripe's semantics (``idempotency.py``).

May import: ``emporium.shipping`` (methods and rates for a cart), ``emporium.promotions``
(the discounts of a cart, uses taken at checkout), ``emporium.inventory``,
``emporium.catalog``, ``emporium.accounts``, ``emporium.mail`` (guest order e-mails),
``emporium.jobs`` (domain events), ``emporium.audit`` (staff's reads of orders:
``disclosure``) and ``emporium.core``. Publishes: ``checkout.place_order``,
``queries`` (reads: reviews ask ``has_paid_purchase``), ``service`` writes (the erasure
step), ``models.Order``. Reads live in ``queries.py``; writes in ``service.py`` and the verb
modules (``checkout``, ``lifecycle``, ``cart``, ``carts``, ``cart_purge``).
"""
