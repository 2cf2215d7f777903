"""The shipping room: shipping zones (ISO 3166 countries and subdivisions), flat-rate
shipping methods per zone, and tax rates per country, subdivision and tax class.

Owns the tables ``shipping_zone``, ``shipping_method`` and ``tax_rate`` and their staff
routes. May import: ``emporium.accounts`` (guards, identity), ``emporium.audit`` (zone, method
and rate changes) and ``emporium.core``. The orders
room imports it to find the methods and rates that apply to a cart. Money is in the shop
currency's minor units.
"""
