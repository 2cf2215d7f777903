"""Promotions: percentage, fixed-amount and free-shipping discounts, automatic or by code,
and their usage counted race-proof.

Owns ``promotion`` (what staff set up, with ``times_used``) and ``promotion_customer_use``
(uses per customer, keyed by the keyed hash of the buyer's e-mail, so guests count too).
Publishes ``engine`` (pure: which promotions apply to priced lines, the best mix for the
customer, and the discount of each line), ``offers`` (the promotions a cart or an order may
use, read from the database, with the reason a code does not apply), ``usage`` (a use taken
with a conditional update at order placement, given back on cancellation), ``service`` and
``routes`` (staff CRUD), ``codes.normalise_code`` (the stored form of a code) and ``demo``
(the ``serve --demo`` promotions). The orders room calls it from ``orders.quote`` and
checkout; money goes through ``orders.pricing`` afterwards.

May import: ``emporium.catalog`` (the category tree), ``emporium.accounts`` (guards,
callers), ``emporium.jobs`` (domain events), ``emporium.audit`` (promotion changes)
and ``emporium.core``.
"""
