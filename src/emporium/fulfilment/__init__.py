"""Fulfilment: shipping a paid order's units in parcels, with tracking, and their delivery.

Owns ``fulfillment`` (a parcel: carrier, tracking number and ``https`` tracking URL,
``shipped`` then ``delivered``) and ``fulfillment_line`` (the units of each order line it
carries). Publishes ``service`` (``create_fulfillment``: one conditional update per line
through ``orders.lifecycle.ship_units``, never more than ordered; ``mark_delivered``),
``queries``, ``notices`` (the shipping e-mail on ``fulfillment.created``) and ``routes``
(staff). The order's status and ``fulfillment_status`` move only through
``orders.lifecycle`` (``record_fulfilled``, ``record_delivered``, ``set_fulfillment_status``).

May import: ``emporium.orders`` (orders, their lines and lifecycle), ``emporium.accounts``
(callers, guards, the vault, the account's e-mail), ``emporium.jobs`` (domain events and
jobs), ``emporium.mail`` (the shipping e-mail) and ``emporium.core``.
"""
