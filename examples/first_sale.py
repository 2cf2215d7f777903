"""The first sale: the whole life of one order, through Emporium's HTTP API only.

Staff set up Germany (a shipping zone, a DHL method at 4.90, VAT 19 % standard and 7 %
reduced) and a 10 % code; a guest fills a cart with three products, enters the code and a
German address, picks the method, places the order and pays half with a gift card (issued
by staff for exactly half the total) and half with the built-in ``test`` provider; staff ship
two lines in one parcel and the third in another, with tracking; both parcels are
delivered; the guest sends one unit of the first line back; staff receive it, put it back
on the shelf and refund it (to the gift card first).

Against a running server (``emporium serve``; see "Your first sale" in README.md)::

    python examples/first_sale.py --base-url http://127.0.0.1:8000 \\
        --email admin@example.com --password-stdin --totp-secret BASE32SECRET

``--token`` takes a staff or admin access token instead of signing in. The script prints
every figure of the sale. ``tests/test_first_sale.py`` runs :func:`first_sale` in-process on
SQLite and PostgreSQL and checks each figure against a hand calculation.

Needs only ``httpx`` (and ``pyotp`` when signing in with ``--totp-secret``), both installed
with Emporium.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

API = "/api/v1"
Json = dict[str, Any]
Headers = dict[str, str]
Settle = Callable[[], Awaitable[object]]

GUEST_EMAIL = "erika.mustermann@example.com"
ADDRESS: Json = {
    "name": "Erika Mustermann",
    "line1": "Heidestrasse 17",
    "city": "Koeln",
    "postal_code": "51147",
    "country": "DE",
}
STOCK = 10
"""Units of each product on the shelf before the sale."""
SHIPPING_PRICE = 490
"""DHL to Germany, minor units (4.90), tax class ``standard``."""
CODE_PERCENT_BP = 1000
"""The code takes 10 % off (basis points)."""
RATES = (("standard", 1900, "MwSt. 19 %"), ("reduced", 700, "MwSt. 7 %"))


@dataclass(frozen=True, slots=True)
class Item:
    """A product of the sale: its title, price (minor units, tax excluded), the units the
    guest buys and its tax class."""

    title: str
    price: int
    quantity: int
    tax_class: str


ITEMS = (
    Item("Merino scarf", 2291, 3, "standard"),
    Item("Espresso beans 500 g", 1250, 2, "reduced"),
    Item("Dot-grid notebook", 749, 1, "standard"),
)
PARCELS = (
    ("DHL", "00340434161094042557"),
    ("DHL", "00340434161094042564"),
)


def tracking_url(number: str) -> str:
    """The carrier's https tracking page of a parcel."""
    return f"https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode={number}"


class SaleError(Exception):
    """The API answered something the sale did not expect (the status and the body)."""


@dataclass(frozen=True, slots=True)
class Shop:
    """What staff set up: the zone, the method, the tax rates and the promotion (ids and
    the code the guest enters)."""

    zone: Json
    method: Json
    tax_rates: list[Json]
    promotion: Json
    code: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """Every figure of the sale as the API answered it, for printing or checking.

    ``cart``: the cart just before the order; ``placed``: the answer to ``POST /orders``;
    ``order``: the order read by staff at the end; ``variants``: the three variants as
    created (``product_id`` added); ``stock``: their stock at the end; ``ledger``: the
    stock movements of the first one (newest first); ``gift_card``: the card with its
    ledger at the end (oldest movement first).
    """

    shop: Shop
    variants: list[Json]
    cart: Json
    placed: Json
    payments: list[Json]
    gift_card: Json
    fulfillments: list[Json]
    delivered: Json
    return_: Json
    refunds: list[Json]
    order: Json
    ledger: list[Json]
    stock: list[int]


async def call(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    expect: int,
    *,
    headers: Headers | None = None,
    json: Json | None = None,
    params: Json | None = None,
) -> Any:
    """One API call that must answer ``expect``; its JSON body. Raises SaleError."""
    answer = await http.request(
        method, f"{API}{path}", headers=headers or {}, json=json, params=params
    )
    if answer.status_code != expect:
        raise SaleError(f"{method} {path}: {answer.status_code} {answer.text}")
    return answer.json() if answer.content else {}


async def _tax_rate(http: httpx.AsyncClient, staff: Headers, tax_class: str, rate: int) -> Json:
    """A German rate for ``tax_class``: created, or the shop's own when it is the same."""
    body = {"country": "DE", "tax_class": tax_class, "rate_bp": rate}
    answer = await http.post(f"{API}/tax-rates", json=body | {"name": "MwSt."}, headers=staff)
    if answer.status_code == 201:
        made: Json = answer.json()
        return made
    listed = await call(http, "GET", "/tax-rates", 200, headers=staff, params={"limit": 100})
    for rate_row in listed["items"]:
        if {k: rate_row.get(k) for k in body} == body and not rate_row.get("region"):
            kept: Json = rate_row
            return kept
    raise SaleError(f"POST /tax-rates: {answer.status_code} {answer.text}")


async def set_up_shop(http: httpx.AsyncClient, staff: Headers, run: str) -> Shop:
    """Staff: the zone Germany, DHL 4.90, VAT 19 % and 7 % for Germany (a demo shop's equal
    rates are kept), and a 10 % code (``FIRST10-<run>``) that combines with others."""
    zone_body = {"name": f"Germany ({run})", "countries": ["DE"]}
    zone = await call(http, "POST", "/shipping-zones", 201, headers=staff, json=zone_body)
    method_body = {
        "zone_id": zone["id"],
        "name": f"DHL Paket ({run})",
        "carrier": "DHL",
        "price": SHIPPING_PRICE,
        "delivery_days": [1, 3],
    }
    method = await call(http, "POST", "/shipping-methods", 201, headers=staff, json=method_body)
    rates = [await _tax_rate(http, staff, tax_class, bp) for tax_class, bp, _ in RATES]
    code = f"FIRST10-{run}".upper()
    promotion_body = {
        "name": "First sale 10 %",
        "type": "percentage",
        "value": CODE_PERCENT_BP,
        "code": code,
        "combinable": True,
    }
    promotion = await call(http, "POST", "/promotions", 201, headers=staff, json=promotion_body)
    return Shop(zone, method, rates, promotion, code)


async def stock_products(http: httpx.AsyncClient, staff: Headers, run: str) -> list[Json]:
    """Staff: a category and the three products of :data:`ITEMS`, published, each with
    :data:`STOCK` units; their variants (``product_id`` added)."""
    category = await call(
        http, "POST", "/categories", 201, headers=staff, json={"name": f"First sale {run}"}
    )
    variants = []
    for n, item in enumerate(ITEMS, start=1):
        variant = {
            "title": "Default",
            "sku": f"FS-{run}-{n}".upper(),
            "price": item.price,
            "stock": STOCK,
            "weight_grams": 300,
        }
        product = await call(
            http,
            "POST",
            "/products",
            201,
            headers=staff,
            json={
                "title": item.title,
                "category_id": category["id"],
                "published": True,
                "tax_class": item.tax_class,
                "variants": [variant],
            },
        )
        variants.append(product["variants"][0] | {"product_id": product["id"]})
    return variants


async def guest_checkout(
    http: httpx.AsyncClient, shop: Shop, variants: list[Json]
) -> tuple[Json, Json, Headers]:
    """The guest: a cart of the three products, the code, a German address and the DHL
    method, then the order. Returns the cart as priced just before ordering, the order as
    placed, and the guest's ``Order-Token`` headers."""
    items = [
        {"variant_id": v["id"], "quantity": item.quantity}
        for v, item in zip(variants, ITEMS, strict=True)
    ]
    cart = await call(http, "POST", "/carts", 201, json={"items": items})
    holder = {"Cart-Token": cart["token"]}
    path = f"/carts/{cart['id']}"
    code = {"code": shop.code.lower()}  # codes are typed in any case
    await call(http, "POST", f"{path}/promotion-codes", 200, headers=holder, json=code)
    address = {"email": GUEST_EMAIL, "shipping_address": ADDRESS}
    await call(http, "PATCH", path, 200, headers=holder, json=address)
    offered = await call(http, "GET", f"{path}/shipping-methods", 200, headers=holder)
    if shop.method["id"] not in [m["id"] for m in offered]:
        raise SaleError(f"the method {shop.method['name']} is not offered: {offered}")
    chosen = {"shipping_method_id": shop.method["id"]}
    priced = await call(http, "PATCH", path, 200, headers=holder, json=chosen)
    placed = await call(http, "POST", "/orders", 201, headers=holder, json={"cart_id": cart["id"]})
    return priced, placed, {"Order-Token": placed.pop("order_token")}


async def pay_half_and_half(
    http: httpx.AsyncClient, staff: Headers, order: Json, guest: Headers
) -> tuple[Json, list[Json]]:
    """Staff issue a gift card of half the order's total; the guest pays with it, then
    the rest with the ``test`` provider (``pm_card_visa``). Returns the card as issued
    (with its code) and both payments as answered."""
    half = order["total"] // 2
    card = await call(
        http,
        "POST",
        "/gift-cards",
        201,
        headers=staff,
        json={"initial_balance": half, "currency": order["currency"], "note": "First sale"},
    )
    pay = f"/orders/{order['id']}/payments"
    by_card = await call(
        http, "POST", pay, 201, headers=guest, json={"provider": "gift_card", "code": card["code"]}
    )
    by_visa = await call(
        http,
        "POST",
        pay,
        201,
        headers=guest,
        json={"provider": "test", "payment_method": "pm_card_visa"},
    )
    for payment in (by_card, by_visa):
        if payment["status"] != "captured":
            raise SaleError(f"payment not captured: {payment}")
    return card, [by_card, by_visa]


async def ship_and_deliver(
    http: httpx.AsyncClient, staff: Headers, order: Json, settle: Settle
) -> tuple[list[Json], Json]:
    """Staff ship the first two lines in one parcel and the third in another, each with
    DHL tracking and an e-mail to the guest, then mark both delivered. Returns the parcels
    as answered and the order after the last delivery."""
    lines = [line["id"] for line in order["items"]]
    units = {line["id"]: line["quantity"] for line in order["items"]}
    parcels = []
    for group, (carrier, number) in zip((lines[:2], lines[2:]), PARCELS, strict=True):
        body = {
            "lines": [{"order_line_id": i, "quantity": units[i]} for i in group],
            "carrier": carrier,
            "tracking_number": number,
            "tracking_url": tracking_url(number),
            "notify_customer": True,
        }
        parcels.append(
            await call(
                http, "POST", f"/orders/{order['id']}/fulfillments", 201, headers=staff, json=body
            )
        )
    await settle()
    for parcel in parcels:
        await call(http, "POST", f"/fulfillments/{parcel['id']}/delivered", 200, headers=staff)
    delivered = await call(http, "GET", f"/orders/{order['id']}", 200, headers=staff)
    return parcels, delivered


async def return_one_unit(
    http: httpx.AsyncClient, staff: Headers, order: Json, guest: Headers
) -> Json:
    """The guest asks to return one unit of the first line; staff receive it, restock it
    and refund it (without the shipping). Returns the return after the refund."""
    line = order["items"][0]["id"]
    asked = await call(
        http,
        "POST",
        f"/orders/{order['id']}/returns",
        201,
        headers=guest,
        json={"lines": [{"order_line_id": line, "quantity": 1, "reason": "too warm"}]},
    )
    received = {"lines": [{"order_line_id": line, "quantity": 1, "restock": True}]}
    await call(http, "POST", f"/returns/{asked['id']}/receive", 200, headers=staff, json=received)
    refunded: Json = await call(
        http,
        "POST",
        f"/returns/{asked['id']}/refund",
        200,
        headers=staff,
        json={"include_shipping": False},
    )
    return refunded


async def _stock_of(http: httpx.AsyncClient, staff: Headers, variant: Json) -> int:
    product = await call(http, "GET", f"/products/{variant['product_id']}", 200, headers=staff)
    return int(next(v["stock"] for v in product["variants"] if v["id"] == variant["id"]))


async def first_sale(
    http: httpx.AsyncClient,
    staff: Headers,
    *,
    settle: Settle | None = None,
    run: str | None = None,
) -> Receipt:
    """Run the whole first sale through the API at ``http``'s base URL with ``staff``'s
    headers (a staff or admin session with MFA, or a bearer token). ``settle`` is awaited
    whenever background jobs (e-mails) should have run; ``run`` makes the names, SKUs and
    code of this run unique (random by default). Raises SaleError on any unexpected answer.
    """
    settle = settle or _no_wait
    run = run or uuid.uuid4().hex[:6]
    shop = await set_up_shop(http, staff, run)
    variants = await stock_products(http, staff, run)
    cart, placed, guest = await guest_checkout(http, shop, variants)
    await settle()
    card, _ = await pay_half_and_half(http, staff, placed, guest)
    await settle()
    parcels, delivered = await ship_and_deliver(http, staff, placed, settle)
    refunded = await return_one_unit(http, staff, placed, guest)
    await settle()
    order_path = f"/orders/{placed['id']}"
    movements = await call(
        http,
        "GET",
        f"/variants/{variants[0]['id']}/stock-movements",
        200,
        headers=staff,
        params={"limit": 100},
    )
    return Receipt(
        shop=shop,
        variants=variants,
        cart=cart,
        placed=placed,
        payments=(await call(http, "GET", f"{order_path}/payments", 200, headers=staff))["items"],
        gift_card=await call(http, "GET", f"/gift-cards/{card['id']}", 200, headers=staff),
        fulfillments=parcels,
        delivered=delivered,
        return_=refunded,
        refunds=(await call(http, "GET", f"{order_path}/refunds", 200, headers=staff))["items"],
        order=await call(http, "GET", order_path, 200, headers=staff),
        ledger=movements["items"],
        stock=[await _stock_of(http, staff, v) for v in variants],
    )


async def _no_wait() -> None:
    return None


# --- the command line -------------------------------------------------------------------


async def sign_in(http: httpx.AsyncClient, args: argparse.Namespace) -> Headers:
    """Staff headers from ``--token``, or from signing in with ``--email`` and the password
    (and a code from ``--totp-secret``, or MFA enrolled now with ``--enrol-mfa``)."""
    if args.token:
        return {"Authorization": f"Bearer {args.token}"}
    if not args.email:
        raise SaleError("give --token, or --email with the password")
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass()
    login = {"email": args.email, "password": password}
    answer = await call(http, "POST", "/auth/login", 200, json=login)
    if answer.get("mfa_required"):
        if not args.totp_secret:
            raise SaleError("this account has MFA: give --totp-secret")
        code = {"mfa_token": answer["mfa_token"], "code": _totp(args.totp_secret)}
        answer = await call(http, "POST", "/auth/login/mfa", 200, json=code)
        return {"Authorization": f"Bearer {answer['access_token']}"}
    headers = {"Authorization": f"Bearer {answer['access_token']}"}
    if not args.enrol_mfa:
        raise SaleError("staff operations need MFA, which this account has not: add --enrol-mfa")
    await enrol_mfa(http, headers)
    return headers


async def enrol_mfa(http: httpx.AsyncClient, headers: Headers) -> None:
    """Turn TOTP on for the signed-in account (staff operations need it) and print its
    secret and recovery codes: keep them, the next sign-in asks for a code."""
    started = await call(http, "POST", "/auth/mfa/totp", 200, headers=headers)
    code = {"code": _totp(started["secret"])}
    codes = await call(http, "POST", "/auth/mfa/totp/confirm", 200, headers=headers, json=code)
    print(f"MFA enrolled. TOTP secret (use --totp-secret next time): {started['secret']}")
    print(f"Authenticator URI: {started['otpauth_uri']}")
    print("Recovery codes: " + " ".join(codes["recovery_codes"]))


def _totp(secret: str) -> str:
    import pyotp  # installed with Emporium; only needed when signing in with MFA

    return str(pyotp.TOTP(secret).now())


def money(minor: int, currency: str) -> str:
    """``11154, "USD"`` → ``"111.54 USD"`` (two decimals, as the shop's e-mails show)."""
    return f"{minor // 100}.{minor % 100:02d} {currency}"


def report(sale: Receipt) -> list[str]:
    """The sale's figures as lines of text."""
    order, cur = sale.order, sale.order["currency"]
    out = [f"Order {order['number']} ({order['id']}), code {sale.shop.code}"]
    for line in order["items"]:
        out.append(
            f"  {line['quantity']} x {line['title']} at {money(line['unit_price'], cur)}:"
            f" subtotal {money(line['subtotal'], cur)}, discount"
            f" -{money(line['discount_total'], cur)}, tax {line['tax_rate'] / 100:g} %"
            f" {money(line['tax_total'], cur)}, total {money(line['total'], cur)}"
        )
    shipping = order["shipping"]
    out += [
        f"  shipping {shipping['name']}: {money(order['shipping_total'], cur)}"
        f" + tax {money(shipping['tax_total'], cur)}",
        f"  subtotal {money(order['subtotal'], cur)}, discount"
        f" -{money(order['discount_total'], cur)}, tax {money(order['tax_total'], cur)},"
        f" total {money(order['total'], cur)}",
    ]
    out += [
        f"Paid {money(p['amount'], cur)} by {p['provider']} ({p['status']})" for p in sale.payments
    ]
    out += [
        f"Parcel {f['tracking_number']}: {sum(ln['quantity'] for ln in f['lines'])} unit(s),"
        f" {f['tracking_url']}"
        for f in sale.fulfillments
    ]
    out += [
        f"Returned 1 x {order['items'][0]['title']}: refunded"
        f" {money(sale.return_['amount_refunded'], cur)}",
        f"Gift card ...{sale.gift_card['last4']}: balance {money(sale.gift_card['balance'], cur)}"
        " after " + ", ".join(f"{m['kind']} {m['amount']:+d}" for m in sale.gift_card["movements"]),
        f"Order: paid {money(order['paid_total'], cur)}, refunded"
        f" {money(order['refunded_total'], cur)}, {order['payment_status']},"
        f" {order['fulfillment_status']}",
        f"Stock of {ITEMS[0].title}: {sale.stock[0]} ("
        + ", ".join(f"{m['kind']} {m['delta']:+d}" for m in reversed(sale.ledger))
        + f"); of the others: {sale.stock[1]}, {sale.stock[2]}",
    ]
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (``--help`` lists it)."""
    parser = argparse.ArgumentParser(
        description="Run the first sale through an Emporium server's HTTP API.",
        epilog="See 'Your first sale' in README.md.",
    )
    parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="the server")
    parser.add_argument("--token", help="a staff or admin access token (instead of --email)")
    parser.add_argument("--email", help="a staff or admin account to sign in with")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    parser.add_argument("--totp-secret", help="the account's TOTP secret (base32), for MFA")
    parser.add_argument(
        "--enrol-mfa",
        action="store_true",
        help="turn MFA on for an account that has none yet, and print its secret",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=2.0,
        help="seconds given to the server's jobs (e-mails) after each step (default 2)",
    )
    return parser.parse_args(argv)


async def run_sale(args: argparse.Namespace) -> Receipt:
    """Sign in and run the sale against ``--base-url``."""
    async with httpx.AsyncClient(base_url=args.base_url, timeout=30) as http:
        staff = await sign_in(http, args)
        return await first_sale(http, staff, settle=lambda: asyncio.sleep(args.wait))


def main(argv: list[str] | None = None) -> int:
    """Run the sale and print it; 1 with the server's answer when a step fails."""
    args = parse_args(argv)
    try:
        sale = asyncio.run(run_sale(args))
    except (SaleError, httpx.HTTPError) as exc:
        print(f"first_sale: error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report(sale)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
