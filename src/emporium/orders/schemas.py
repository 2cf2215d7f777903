"""API shapes of carts and orders. Money: integer minor units plus an ISO 4217 code.

Input structs forbid unknown fields: a client can never set a price, a total, a status or
an owner (OWASP API3:2023, mass assignment).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from emporium.accounts.schemas import AddressIn

MAX_QUANTITY = 999
"""Units of one variant in one cart line or order line."""
MAX_LINES = 100
"""Lines in one cart or order."""

Quantity = Annotated[
    int, Meta(ge=1, le=MAX_QUANTITY, description=f"a whole number of units, 1 to {MAX_QUANTITY}")
]
OrderStatus = Literal["pending", "paid", "fulfilled", "delivered", "cancelled", "refunded"]
PaymentStatus = Literal[
    "unpaid", "authorized", "partially_paid", "paid", "partially_refunded", "refunded"
]
FulfillmentStatus = Literal[
    "unfulfilled",
    "partially_fulfilled",
    "fulfilled",
    "delivered",
    "partially_returned",
    "returned",
]
TransitionTarget = Literal["paid", "fulfilled", "delivered", "refunded"]


class CartItemCreate(Struct, forbid_unknown_fields=True):
    """Put ``quantity`` units of a variant in the cart (added to a line already there)."""

    variant_id: uuid.UUID
    quantity: Quantity


class CartItemUpdate(Struct, forbid_unknown_fields=True):
    """Set a cart line's quantity."""

    quantity: Quantity


class CartItemRead(Struct):
    """A cart line at the variant's current price, priced by ``orders.pricing``:
    ``subtotal = unit_price * quantity``, ``total = subtotal - discount_total (+ tax_total
    when prices exclude tax)``; ``line_total`` is v1's name of ``subtotal``. ``available``
    is false when the product was unpublished or has fewer units on hand than the line asks
    for."""

    id: uuid.UUID
    variant_id: uuid.UUID
    sku: str | None
    title: str
    quantity: int
    unit_price: int
    line_total: int
    available: bool
    subtotal: int
    discount_total: int
    tax_total: int
    total: int


class CartRead(Struct):
    """The caller's cart with current prices: ``subtotal`` is the sum of the lines',
    ``total = subtotal - discount_total + shipping_total (+ tax_total when prices exclude
    tax)``. Money in minor units of ``currency``."""

    items: list[CartItemRead]
    subtotal: int
    discount_total: int
    shipping_total: int
    tax_total: int
    total: int
    currency: str
    prices_include_tax: bool


Email = Annotated[str, Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class CartCreate(Struct, forbid_unknown_fields=True):
    """A new cart, optionally with an e-mail and first lines."""

    email: Email | None = None
    items: Annotated[list[CartItemCreate], Meta(max_length=MAX_LINES)] = []


class CartUpdate(Struct, forbid_unknown_fields=True):
    """Fields to change on a cart (``null`` clears an address or the method)."""

    email: Email | UnsetType = UNSET
    shipping_address: AddressIn | UnsetType | None = UNSET
    billing_address: AddressIn | UnsetType | None = UNSET
    shipping_method_id: uuid.UUID | UnsetType | None = UNSET


class CartLineRead(Struct):
    """A cart line priced for the cart's address (see ``CartView``)."""

    id: uuid.UUID
    variant_id: uuid.UUID
    sku: str | None
    title: str
    quantity: int
    unit_price: int
    subtotal: int
    discount_total: int
    tax_total: int
    total: int


class CartShippingRead(Struct):
    """The cart's shipping method with its price for this cart and the tax on it."""

    id: uuid.UUID
    name: str
    price: int
    tax_total: int


class CartView(Struct):
    """A cart with every figure computed by the server (``orders.pricing``) for its shipping
    address and method: ``total = subtotal - discount_total + shipping_total (+ tax_total
    when prices exclude tax)``. Without an address there is no tax and no shipping."""

    id: uuid.UUID
    customer_id: uuid.UUID | None
    email: str | None
    items: list[CartLineRead]
    subtotal: int
    discount_total: int
    shipping_total: int
    tax_total: int
    total: int
    currency: str
    prices_include_tax: bool
    shipping_address: ShippingAddress | None
    billing_address: ShippingAddress | None
    shipping_method: CartShippingRead | None
    promotion_codes: list[str]
    promotions: list[PromotionApplied]
    promotion_issues: list[PromotionIssue]
    updated_at: datetime


class CartCreated(CartView):
    """A new cart and, for a guest, its ``token`` (shown once; send it as ``Cart-Token``)."""

    token: str | None = None


class ShippingOption(Struct):
    """A method that serves the cart's address, priced for this cart."""

    id: uuid.UUID
    name: str
    carrier: str | None
    price: int
    tax_total: int
    currency: str
    delivery_days: list[int] | None


class OrderLineCreate(Struct, forbid_unknown_fields=True):
    """One line of a new order: which variant and how many; the price comes from the server."""

    variant_id: uuid.UUID
    quantity: Quantity


class OrderCreate(Struct, forbid_unknown_fields=True):
    """Checkout, in one of three shapes: a cart (``cart_id``; a guest sends its
    ``Cart-Token``), whose lines, e-mail, addresses and shipping method make the order; or,
    for a signed-in customer, ``items`` (or, without them, their cart) shipped to either a
    new ``shipping_address`` or one of their saved addresses (``address_id``) with the
    shipping method ``shipping_method_id`` (required once the shop has shipping methods)
    and the ``promotion_codes`` to use (a cart brings its own codes)."""

    cart_id: uuid.UUID | None = None
    items: Annotated[list[OrderLineCreate], Meta(min_length=1, max_length=MAX_LINES)] | None = None
    shipping_address: AddressIn | None = None
    address_id: uuid.UUID | None = None
    shipping_method_id: uuid.UUID | None = None
    promotion_codes: Annotated[list[str], Meta(max_length=5)] | None = None

    one_of_required: ClassVar[dict[str, tuple[str, ...]]] = {
        "FromCart": ("cart_id",),
        "WithShippingAddress": ("shipping_address",),
        "WithAddressId": ("address_id",),
    }
    """Exactly one of them, non-null (the OpenAPI document states it as ``oneOf``)."""


class OrderTransition(Struct, forbid_unknown_fields=True):
    """Staff: move an order to ``to`` along the status machine."""

    to: TransitionTarget


class ShippingAddress(Struct):
    """The address an order ships to, as it was at checkout."""

    name: str
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None
    region: str | None = None
    phone: str | None = None


class OrderLineRead(Struct):
    """A line as sold: SKU, title and unit price at checkout, and its figures:
    ``subtotal = unit_price * quantity`` (v1's ``line_total``), ``discount_total``,
    ``tax_rate`` (basis points), ``tax_total`` and ``total = subtotal - discount_total
    (+ tax_total when prices exclude tax)``; ``quantity_fulfilled`` units have shipped,
    ``quantity_returned`` of them came back."""

    id: uuid.UUID
    variant_id: uuid.UUID | None
    sku: str | None
    title: str
    quantity: int
    unit_price: int
    line_total: int
    subtotal: int
    discount_total: int
    tax_rate: int
    tax_total: int
    total: int
    quantity_fulfilled: int = 0
    quantity_returned: int = 0


class PromotionApplied(Struct):
    """A promotion applied to an order: its code, name and the discount it gave (minor
    units)."""

    code: str | None
    name: str
    amount: int


class PromotionIssue(Struct):
    """A code entered on a cart that gives nothing now, and why: ``reason`` is
    ``promotion_code_invalid``, ``promotion_expired``, ``promotion_exhausted`` or
    ``promotion_not_applicable`` (placing the order is refused with it until the code is
    removed), or ``promotion_not_combinable`` (a better promotion applies; a notice only)."""

    code: str
    reason: str
    detail: str


class PromotionCodeAdd(Struct, forbid_unknown_fields=True):
    """A promotion code to enter on a cart (case-insensitive)."""

    code: Annotated[str, Meta(min_length=1, max_length=100)]


class OrderShippingRead(Struct):
    """An order's shipping as sold: the method (its id may since be deleted), its ``price``
    for this order (``shipping_total``) and the tax on it (inside ``price`` when prices
    include tax)."""

    method_id: uuid.UUID | None
    name: str
    price: int
    tax_total: int


class StatusChangeRead(Struct):
    """One move of the order's status: by whom (``customer``, ``staff``, ``api_key``,
    ``system``) and when."""

    from_status: OrderStatus | None
    to_status: OrderStatus
    by: str
    at: datetime


class OrderRead(Struct):
    """An order with every figure stored at checkout: ``subtotal`` (sum of the lines'),
    ``discount_total`` (sum of the lines'), ``shipping_total``, ``tax_total`` (the lines'
    and the shipping's) and ``total = subtotal - discount_total + shipping_total
    (+ tax_total when prices exclude tax)``; ``paid_total`` and ``refunded_total`` (never
    more than ``paid_total``): all in minor units of ``currency``. ``customer_id`` is null
    for a guest's order. ``expires_at``: when a ``pending`` order is cancelled unless paid
    (null: no payment deadline)."""

    id: uuid.UUID
    number: str
    status: OrderStatus
    payment_status: PaymentStatus
    fulfillment_status: FulfillmentStatus
    customer_id: uuid.UUID | None
    email: str | None
    items: list[OrderLineRead]
    subtotal: int
    discount_total: int
    shipping: OrderShippingRead | None
    shipping_total: int
    tax_total: int
    total: int
    paid_total: int
    refunded_total: int
    currency: str
    prices_include_tax: bool
    promotions: list[PromotionApplied]
    shipping_address: ShippingAddress
    billing_address: ShippingAddress | None
    status_history: list[StatusChangeRead]
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class OrderCreated(OrderRead, omit_defaults=True):
    """A new order; a guest's carries ``order_token`` (shown once: send it as
    ``Order-Token`` to read and pay the order)."""

    order_token: str | None = None


class OrderPage(Struct):
    """A keyset page of orders, newest first."""

    items: list[OrderRead]
    next_cursor: str | None
