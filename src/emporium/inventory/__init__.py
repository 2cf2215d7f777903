"""Inventory: stock levels of variants and the stock ledger.

Owns the ``stock_movement`` table: every change to a variant's stock, by staff, by an import
or by an order, is one row here, written in the same transaction as the change, so that for
every variant ``stock = received + adjustment - sold + returned`` (the sum of its movements).
Stock is only ever changed by conditional updates (``stock + delta >= 0``) backed by the
``stock_non_negative`` CHECK constraint, so it is never negative and never sold twice.

May import: ``emporium.catalog``, ``emporium.accounts``, ``emporium.jobs`` (domain events),
``emporium.audit`` (stock adjustments) and ``emporium.core``. Publishes: ``service.take_stock``,
``service.return_stock``, ``service.adjust_stock``, ``queries.list_movements``, and
``ledger.install_ledger_hook`` (an ORM hook that ``create_app`` registers: stock set through
ORM variants, as ``catalog.service`` and imports do, gets its movements in the same flush).
"""
