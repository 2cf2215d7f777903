"""Returns: customers send shipped units back, staff count them in and refund them.

Owns ``order_return`` and ``return_line``, and moves the returns columns of ``order_line``
(``quantity_return_requested``, ``quantity_returned``) with conditional updates only.
Publishes ``service`` (``request_return``, ``receive_return``, ``list_returns``),
``refunding`` (``refund_return``: the amount from ``orders.pricing.refund_for_lines``,
sent through ``payments.refunds``, gift cards first), ``routes`` and the events
``return.requested``, ``return.received`` and ``refund.created``.

May import: ``emporium.payments`` (refunds through the order's payments, the order's
visibility), ``emporium.orders`` (orders, lines, pricing), ``emporium.inventory``
(restocked units through the ledger), ``emporium.accounts`` (callers, guards),
``emporium.jobs`` (domain events), ``emporium.audit`` (refunds of returns) and
``emporium.core``.
"""
