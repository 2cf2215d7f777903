"""Payments: taking an order's money through a provider, exactly once, and giving it back.

Owns ``payment``, ``refund``, ``payment_event`` (provider events applied), ``payment_change``
(each order's money history: who, when, how much) and the test provider's own tables.
Publishes ``providers`` (the interface in ``providers.base``; ``manual``, ``test``,
``gift_card``, ``build_providers``), ``apply`` (``apply_intent``: a provider's truth applied
once, forward only), ``service`` (create, capture, cancel), ``refunds``, ``events``
(webhooks), ``jobs`` (the test provider's deliveries; the refunds of cancelled orders),
``queries`` and ``routes``. Orders never import payments: an order becomes ``paid`` through
``orders.lifecycle.record_paid``, and payments hears of cancellations by ``order.cancelled``.

May import: ``emporium.orders`` (orders, their lifecycle, idempotency keys),
``emporium.giftcards`` (the ``gift_card`` provider's balances and ledger),
``emporium.accounts`` (callers, guards, the vault), ``emporium.jobs`` (domain events and
jobs), ``emporium.mail`` (the staff alert), ``emporium.audit`` (captures, manual payments,
refunds) and ``emporium.core``.
"""
