"""Errors of the shipping room, each with a stable code."""

from __future__ import annotations

from emporium.core.errors import Conflict, NotFound


class ZoneNotFound(NotFound):
    """No such shipping zone."""

    code = "shipping_zone_not_found"


class MethodNotFound(NotFound):
    """No such shipping method."""

    code = "shipping_method_not_found"


class TaxRateNotFound(NotFound):
    """No such tax rate."""

    code = "tax_rate_not_found"


class ZoneInUse(Conflict):
    """A zone that still has methods cannot be deleted."""

    code = "shipping_zone_in_use"


class TaxRateExists(Conflict):
    """A rate for that country, region and tax class exists already."""

    code = "tax_rate_exists"
