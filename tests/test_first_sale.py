"""The first sale (issue 15's acceptance script), in-process on SQLite and PostgreSQL.

``examples/first_sale.py`` runs the sale through the HTTP API; here every figure it got back
is checked against the hand calculation below, and so are the e-mails the guest received.

Prices exclude tax (the default, ``EMPORIUM_PRICES_INCLUDE_TAX=false``); Germany: 19 %
standard (the scarf, the notebook and the shipping), 7 % reduced (the coffee).

Lines (minor units, USD, the shop's currency)::

    A  Merino scarf          22.91 x 3 = 68.73   standard 19 %
    B  Espresso beans 500 g  12.50 x 2 = 25.00   reduced   7 %
    C  Dot-grid notebook      7.49 x 1 =  7.49   standard 19 %
                              subtotal  = 101.22

The 10 % code: 10 % of 101.22 = 10.122, rounded half up = 10.12, spread over the lines in
proportion to their subtotals, each share rounded down, the cents left over one each to
the largest lines::

    A  10.12 x 68.73 / 101.22 = 6.8716..  -> 6.87
    B  10.12 x 25.00 / 101.22 = 2.4995..  -> 2.49
    C  10.12 x  7.49 / 101.22 = 0.7488..  -> 0.74
                                  sum        10.10, 2 cents left -> A and B (the largest
                                  lines; not C, although its fraction .88 is the biggest)
    A 6.88   B 2.50   C 0.74

Tax per line on the discounted amount, rounded half up::

    A  (68.73 - 6.88) = 61.85 x 19 % = 11.7515 -> 11.75   line total 73.60
    B  (25.00 - 2.50) = 22.50 x  7 % =  1.575  ->  1.58   line total 24.08 (half up)
    C  ( 7.49 - 0.74) =  6.75 x 19 % =  1.2825 ->  1.28   line total  8.03
    shipping 4.90 x 19 % = 0.931 -> 0.93

    tax    11.75 + 1.58 + 1.28 + 0.93 = 15.54
    total  101.22 - 10.12 + 4.90 + 15.54 = 111.54  (= 73.60 + 24.08 + 8.03 + 4.90 + 0.93)

Paid: a gift card of 111.54 / 2 = 55.77, then the test provider the other 55.77.

The return of one scarf: its share of the line's discounted subtotal, 61.85 x 1/3 =
20.6166.. -> 20.62 (half up), plus its tax 20.62 x 19 % = 3.9178 -> 3.92: 24.54. Gift card
first: the card (spent to 0.00) is credited 24.54, nothing goes back to the visa card.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import SignIn
from emporium.core.config import Settings
from factories import Client
from first_sale import ADDRESS, GUEST_EMAIL, ITEMS, PARCELS, STOCK, first_sale, tracking_url
from mail.test_mail import folder_messages, text_of
from runjobs import drain
from servers import server_env, servers

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "first_sale.py"

Json = dict[str, Any]

# The hand calculation above, figure by figure (minor units).
SUBTOTALS = [6873, 2500, 749]
SUBTOTAL = 10122
DISCOUNTS = [688, 250, 74]
DISCOUNT = 1012
RATES = [1900, 700, 1900]
TAXES = [1175, 158, 128]
LINE_TOTALS = [7360, 2408, 803]
SHIPPING, SHIPPING_TAX = 490, 93
TAX = 1554
TOTAL = 11154
HALF = 5577
REFUND = 2454  # 2062 + 392


def _line_figures(order: Json) -> list[tuple[int, ...]]:
    return [
        (i["subtotal"], i["discount_total"], i["tax_rate"], i["tax_total"], i["total"])
        for i in order["items"]
    ]


def _order_figures(order: Json) -> tuple[int, ...]:
    return (
        order["subtotal"],
        order["discount_total"],
        order["shipping_total"],
        order["tax_total"],
        order["total"],
    )


EXPECTED_LINES = list(zip(SUBTOTALS, DISCOUNTS, RATES, TAXES, LINE_TOTALS, strict=True))
EXPECTED_ORDER = (SUBTOTAL, DISCOUNT, SHIPPING, TAX, TOTAL)


async def test_the_first_sale(client: Client, sign_in: SignIn, settings: Settings) -> None:
    staff = await sign_in(roles=["staff"])
    # Staff set up the shop; jobs (e-mails) run whenever the sale says they should have.
    sale = await first_sale(client, staff, settle=lambda: drain(client), run="t1")

    # The cart before ordering and the order as placed carry the same figures.
    assert (sale.cart["subtotal"], sale.cart["discount_total"]) == (SUBTOTAL, DISCOUNT)
    assert (sale.cart["shipping_total"], sale.cart["tax_total"]) == (SHIPPING, TAX)
    assert sale.cart["total"] == TOTAL
    assert [p["amount"] for p in sale.cart["promotions"]] == [DISCOUNT]
    placed = sale.placed
    assert placed["prices_include_tax"] is False
    assert [(i["unit_price"], i["quantity"]) for i in placed["items"]] == [
        (item.price, item.quantity) for item in ITEMS
    ]
    assert _line_figures(placed) == EXPECTED_LINES
    assert _order_figures(placed) == EXPECTED_ORDER
    assert placed["shipping"]["price"] == SHIPPING
    assert placed["shipping"]["tax_total"] == SHIPPING_TAX
    assert [p["amount"] for p in placed["promotions"]] == [DISCOUNT]
    assert placed["shipping_address"]["country"] == ADDRESS["country"]

    # Half and half: the card, then the visa card.
    assert sorted((p["provider"], p["amount"], p["status"]) for p in sale.payments) == [
        ("gift_card", HALF, "captured"),
        ("test", HALF, "captured"),
    ]
    # Two parcels: lines A and B, then C; delivered, so the order is delivered.
    # (A parcel lists its lines by line id, not in the order's line order.)
    a, b, c = (line["id"] for line in placed["items"])
    parcels = [
        {(ln["order_line_id"], ln["quantity"]) for ln in f["lines"]} for f in sale.fulfillments
    ]
    assert parcels == [{(a, 3), (b, 2)}, {(c, 1)}]
    assert [f["tracking_url"] for f in sale.fulfillments] == [tracking_url(n) for _, n in PARCELS]
    assert (sale.delivered["status"], sale.delivered["fulfillment_status"]) == (
        "delivered",
        "delivered",
    )

    # The return: one scarf, restocked, refunded 24.54 to the gift card.
    assert (sale.return_["status"], sale.return_["amount_refunded"]) == ("refunded", REFUND)
    assert sale.return_["lines"][0]["restocked"] == 1
    by_payment = {p["id"]: p["provider"] for p in sale.payments}
    assert [(by_payment[r["payment_id"]], r["amount"]) for r in sale.refunds] == [
        ("gift_card", REFUND)
    ]
    card = sale.gift_card
    assert (card["initial_balance"], card["balance"]) == (HALF, REFUND)
    assert [(m["kind"], m["amount"], m["balance_after"]) for m in card["movements"]] == [
        ("issued", HALF, HALF),
        ("debit", -HALF, 0),
        ("credit", REFUND, REFUND),
    ]

    # The order at the end: every figure unchanged, 24.54 of 111.54 given back.
    order = sale.order
    assert _line_figures(order) == EXPECTED_LINES
    assert _order_figures(order) == EXPECTED_ORDER
    assert (order["paid_total"], order["refunded_total"]) == (TOTAL, REFUND)
    assert (order["payment_status"], order["fulfillment_status"]) == (
        "partially_refunded",
        "partially_returned",
    )
    assert [(i["quantity_fulfilled"], i["quantity_returned"]) for i in order["items"]] == [
        (3, 1),
        (2, 0),
        (1, 0),
    ]

    # Stock: 10 on the shelf, 3 scarves sold, 1 back: 8; coffee 10 - 2; notebook 10 - 1.
    assert sale.stock == [STOCK - 3 + 1, STOCK - 2, STOCK - 1]
    assert sorted((m["kind"], m["delta"]) for m in sale.ledger) == [
        ("received", STOCK),
        ("returned", 1),
        ("sale", -3),
    ]
    assert {m["order_id"] for m in sale.ledger if m["kind"] != "received"} == {placed["id"]}

    _assert_the_guest_s_mail(settings, placed)


def _assert_the_guest_s_mail(settings: Settings, order: Json) -> None:
    """Confirmation (every figure), paid (the total), two shipping notices with their
    tracking links; Emporium sends no e-mail about a refund yet."""
    assert settings.mail_dir is not None
    mails = [m for m in folder_messages(settings.mail_dir) if m["To"] == GUEST_EMAIL]
    number = order["number"]
    assert sorted(m["Subject"] for m in mails) == sorted(
        [
            f"Order {number} confirmed",
            f"Order {number} paid",
            f"Order {number} shipped",
            f"Order {number} shipped",
        ]
    )
    by_subject: dict[str, list[str]] = {}
    for mail in mails:
        by_subject.setdefault(str(mail["Subject"]), []).append(text_of(mail))
    (confirmed,) = by_subject[f"Order {number} confirmed"]
    for expected in [
        "3 x Merino scarf (FS-T1-1) at 22.91 USD: 68.73 USD",
        "2 x Espresso beans 500 g (FS-T1-2) at 12.50 USD: 25.00 USD",
        "1 x Dot-grid notebook (FS-T1-3) at 7.49 USD: 7.49 USD",
        "Subtotal: 101.22 USD",
        "Discount: -10.12 USD",
        "Shipping: 4.90 USD",
        "Tax: 15.54 USD",
        "Total: 111.54 USD",
    ]:
        assert expected in confirmed, confirmed
    (paid,) = by_subject[f"Order {number} paid"]
    assert "we received 111.54 USD" in paid
    first, second = sorted(
        by_subject[f"Order {number} shipped"], key=lambda text: PARCELS[1][1] in text
    )
    assert "3 x Merino scarf" in first
    assert "2 x Espresso beans 500 g" in first
    assert "notebook" not in first
    assert "1 x Dot-grid notebook" in second
    for text, (carrier, tracking) in zip((first, second), PARCELS, strict=True):
        assert f"Carrier: {carrier}" in text
        assert f"Tracking number: {tracking}" in text
        assert f"Track your parcel: {tracking_url(tracking)}" in text


def test_the_script_helps_without_a_server() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "--base-url" in done.stdout
    assert "--token" in done.stdout


@pytest.mark.slow
def test_the_script_sells_through_a_real_server(
    database_url: str, key_file: Path, tmp_path: Path, sign_in: SignIn
) -> None:
    """``examples/first_sale.py`` as a user runs it: a process talking HTTP to an
    ``emporium serve`` process (its embedded job runner sending the e-mails)."""

    async def admin() -> dict[str, str]:
        return await sign_in(roles=["admin", "staff"])

    staff = asyncio.run(admin())
    token = staff["Authorization"].removeprefix("Bearer ")
    mail_dir = tmp_path / "mail"
    env = server_env(database_url, key_file, route_limits=False, mail_dir=str(mail_dir))
    with servers(1, env, tmp_path) as (base,):
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--base-url", base, "--token", token, "--wait", "0.5"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        out = done.stdout
        for figure in [
            "subtotal 101.22 USD, discount -10.12 USD, tax 15.54 USD, total 111.54 USD",
            "Paid 55.77 USD by gift_card (captured)",
            "Paid 55.77 USD by test (captured)",
            "Returned 1 x Merino scarf: refunded 24.54 USD",
            "balance 24.54 USD after issued +5577, debit -5577, credit +2454",
            "Order: paid 111.54 USD, refunded 24.54 USD, partially_refunded, partially_returned",
            "Stock of Merino scarf: 8 (received +10, sale -3, returned +1); of the others: 8, 9",
        ]:
            assert figure in out, out
        deadline = time.monotonic() + 30
        while len(_guest_subjects(mail_dir)) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
    subjects = _guest_subjects(mail_dir)
    assert sorted(s.split()[-1] for s in subjects) == ["confirmed", "paid", "shipped", "shipped"]


def _guest_subjects(mail_dir: Path) -> list[str]:
    if not mail_dir.exists():
        return []
    return [str(m["Subject"]) for m in folder_messages(mail_dir) if m["To"] == GUEST_EMAIL]
