"""Which promotions a cart gets, and what each gives to each line: pure functions over
integer minor units (no database, no floats), shared by the cart and checkout.

The rules (the README, "Promotions", states them for shop owners):

- A promotion *targets* the whole order, or the lines of its products and categories
  (sub-categories included; the caller expands them). It is *eligible* when at least one
  line is targeted and the goods' subtotal before any discount reaches ``min_subtotal``.
- Within one set of promotions, percentages apply first, then fixed amounts (the order
  that gives the customer the most), each in the order of their ids; each works on what
  is left of its target lines after the ones before it, so no discount exceeds what it
  applies to and no line goes negative. A percentage of what is left is rounded half up
  to the minor unit (``orders.pricing.round_half_up``); a fixed amount is capped at what
  is left. The amount is spread over the target lines in proportion to what is left of
  them (``orders.pricing.allocate``: whole units, the remainder to the largest lines),
  which is the contract's rule for an order-level discount.
- Free shipping waives the chosen method's price (and so its tax).
- ``combinable`` promotions all apply together; a promotion that is not combinable
  applies alone. The candidates are the set of every eligible combinable promotion, and
  each eligible non-combinable one on its own; the customer gets the candidate after which
  they pay least (goods discount plus the shipping price waived, less any shipping price
  the discount makes payable by taking the subtotal below the method's ``free_over``),
  the combinable set on a tie, then the promotion with the smallest id; but a candidate
  that would show nothing (all its promotions give nothing) loses a tie to one that shows
  free shipping while no method is chosen.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from emporium.core.money import BASIS_POINTS, allocate, round_half_up

PromotionType = Literal["percentage", "fixed_amount", "free_shipping"]
_ORDER: dict[str, int] = {"percentage": 0, "fixed_amount": 1, "free_shipping": 2}


@dataclass(frozen=True, slots=True)
class Offer:
    """A promotion as the engine sees it: ``value`` in basis points (``percentage``) or
    minor units (``fixed_amount``); ``product_ids`` and ``category_ids`` (sub-categories
    already included) both empty for the whole order; ``min_subtotal`` in minor units."""

    id: uuid.UUID
    name: str
    code: str | None
    type: PromotionType
    value: int
    combinable: bool = False
    min_subtotal: int | None = None
    product_ids: frozenset[uuid.UUID] = frozenset()
    category_ids: frozenset[uuid.UUID] = frozenset()

    @property
    def whole_order(self) -> bool:
        """True when the promotion targets every line."""
        return not self.product_ids and not self.category_ids

    def targets(self, line: Line) -> bool:
        """True when ``line`` is one this promotion discounts."""
        return (
            self.whole_order
            or line.product_id in self.product_ids
            or line.category_id in self.category_ids
        )


@dataclass(frozen=True, slots=True)
class Line:
    """A line to discount: its ``subtotal`` (minor units) and what it is."""

    subtotal: int
    product_id: uuid.UUID | None = None
    category_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """What one promotion gave: ``line_discounts`` (one per line, minor units) adding up to
    ``goods``, and ``shipping`` (the shipping price waived, free shipping only)."""

    offer: Offer
    line_discounts: tuple[int, ...]
    goods: int
    shipping: int = 0

    @property
    def amount(self) -> int:
        """The customer's saving from this promotion, minor units."""
        return self.goods + self.shipping


@dataclass(frozen=True, slots=True)
class Outcome:
    """The promotions applied to a cart and those left out: ``line_discounts`` per line
    (the sums of the applied ones), ``free_shipping`` when one applied,
    ``not_eligible`` (conditions not met) and ``outdone`` (eligible, but a better candidate
    won, see the module's rules)."""

    applied: tuple[Applied, ...]
    line_discounts: tuple[int, ...]
    free_shipping: bool
    not_eligible: tuple[Offer, ...]
    outdone: tuple[Offer, ...]

    @property
    def goods_discount(self) -> int:
        """The discount on the goods (the order's ``discount_total``), minor units."""
        return sum(self.line_discounts)


ShippingFor = Callable[[int], int]
"""The shipping price (minor units) for a discounted goods subtotal (``free_over``)."""


def eligible(offer: Offer, lines: Sequence[Line]) -> bool:
    """True when ``offer`` targets at least one line and the goods' subtotal before any
    discount reaches its ``min_subtotal``."""
    if not any(offer.targets(line) and line.subtotal > 0 for line in lines):
        return False
    return offer.min_subtotal is None or sum(x.subtotal for x in lines) >= offer.min_subtotal


def _give(offer: Offer, lines: Sequence[Line], left: list[int]) -> tuple[int, ...]:
    """The discount ``offer`` gives each line from what is ``left`` of it."""
    weights = [left[i] if offer.targets(line) else 0 for i, line in enumerate(lines)]
    base = sum(weights)
    if offer.type == "percentage":
        amount = round_half_up(base * min(offer.value, BASIS_POINTS), BASIS_POINTS)
    elif offer.type == "fixed_amount":
        amount = min(offer.value, base)
    else:
        amount = 0
    return tuple(allocate(amount, weights))


def apply_together(
    offers: Sequence[Offer], lines: Sequence[Line], shipping: ShippingFor | None = None
) -> tuple[Applied, ...]:
    """Apply every offer in ``offers`` together (percentages, then fixed amounts, then free
    shipping; by id within a type), each on what the ones before it left of its lines.
    ``shipping``: the chosen method's price for a discounted subtotal (None: no shipping,
    so free shipping waives nothing)."""
    left = [line.subtotal for line in lines]
    applied: list[Applied] = []
    for offer in sorted(offers, key=lambda o: (_ORDER[o.type], o.id)):
        shares = _give(offer, lines, left)
        left = [a - b for a, b in zip(left, shares, strict=True)]
        applied.append(Applied(offer, shares, sum(shares)))
    if shipping is None:
        return tuple(applied)
    waived = shipping(sum(left))
    return tuple(
        Applied(a.offer, a.line_discounts, a.goods, waived)
        if a.offer.type == "free_shipping"
        else a
        for a in applied
    )


def _first_free_shipping_only(applied: tuple[Applied, ...]) -> tuple[Applied, ...]:
    """Two free-shipping promotions waive the price once: the first one counts it."""
    seen, kept = False, []
    for a in applied:
        if a.offer.type == "free_shipping":
            kept.append(Applied(a.offer, a.line_discounts, a.goods, 0 if seen else a.shipping))
            seen = True
        else:
            kept.append(a)
    return tuple(kept)


def choose(
    offers: Sequence[Offer], lines: Sequence[Line], shipping: ShippingFor | None = None
) -> Outcome:
    """The promotions the customer gets on ``lines`` (see the module's rules), with the
    discount of each line and the reasons the others were left out."""
    fit = [o for o in offers if eligible(o, lines)]
    not_eligible = tuple(o for o in offers if o not in fit)
    candidates: list[tuple[Applied, ...]] = [
        _first_free_shipping_only(apply_together([o for o in fit if o.combinable], lines, shipping))
    ]
    for offer in sorted((o for o in fit if not o.combinable), key=lambda o: o.id):
        candidates.append(apply_together([offer], lines, shipping))

    # A promotion that gives nothing is left out (free shipping is kept while no method is
    # chosen, so the cart shows it will apply); a candidate left with nothing loses a tie.
    def shown(a: Applied) -> bool:
        return a.amount > 0 or (a.offer.type == "free_shipping" and shipping is None)

    def benefit(candidate: tuple[Applied, ...]) -> int:
        """What the buyer pays less with ``candidate``: its discounts and the shipping it
        waives, less any shipping its discounts make payable (``free_over`` no longer
        reached)."""
        saved = sum(a.amount for a in candidate)
        if shipping is None:
            return saved
        subtotal, goods = sum(x.subtotal for x in lines), sum(a.goods for a in candidate)
        return saved - (shipping(subtotal - goods) - shipping(subtotal))

    best = max(candidates, key=lambda c: (benefit(c), any(map(shown, c))))
    best = tuple(a for a in best if shown(a))  # max: the first wins a tie
    chosen = {a.offer.id for a in best}
    discounts = [0] * len(lines)
    for a in best:
        discounts = [x + y for x, y in zip(discounts, a.line_discounts, strict=True)]
    return Outcome(
        applied=best,
        line_discounts=tuple(discounts),
        free_shipping=any(a.offer.type == "free_shipping" for a in best),
        not_eligible=not_eligible,
        outdone=tuple(o for o in fit if o.id not in chosen),
    )
