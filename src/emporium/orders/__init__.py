"""Orders: the cart, checkout (``place_order``), the order lifecycle and idempotency keys.

Checkout prices every line from the database and takes stock through ``inventory`` in the
request's one transaction; order status moves only along ``lifecycle.TRANSITIONS``, each move
a conditional update recorded with who made it and when. ``POST /orders`` honours
``Idempotency-Key`` with Stripe's semantics (``idempotency.py``).

May import: ``inventory``, ``catalog``, ``accounts``, ``core``. Publishes: ``checkout.place_order``,
``service`` verbs, ``models.Order`` (reviews ask it whether a purchase was paid).
"""
