"""The admin in a real browser (Debian's Chromium, driven by Playwright) against a real
``emporium serve`` on a fresh database: the first admin signs in and enrols TOTP, signs in
again with a code, builds a product that the public API then shows, a customer (through the
API) buys it, and the admin takes the order through payment, shipping, a return and its refund;
then reveals the customer's phone and finds the audit event. Every main screen is checked with
axe-core (no serious or critical violation) and with the CSP (no violation reported), and
screenshotted to ``.ci/artifacts/admin/``.

Skipped with the reason when ``/usr/bin/chromium``, the built admin or ``admin/node_modules``
(axe-core) is absent. ``EMPORIUM_UPDATE_DOCS_SCREENSHOT=1`` also rewrites
``docs/admin-dashboard.png``.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from emporium.core.http.admin_ui import DIST
from servers import EMPORIUM, server_env, serving

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "admin" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / ".ci" / "artifacts" / "admin"
ADMIN_EMAIL, ADMIN_PASSWORD = "owner@example.com", "correct horse battery staple 42"
CUSTOMER_EMAIL, CUSTOMER_PASSWORD = "carla@example.com", "a long customer passphrase 7"
PHONE = "+14155550123"
ADDRESS = {
    "name": "Carla Customer",
    "line1": "1 Market St",
    "city": "San Francisco",
    "region": "US-CA",
    "postal_code": "94105",
    "country": "US",
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)"
    ),
    pytest.mark.skipif(
        not (DIST / "index.html").is_file(),
        reason="admin not built (cd admin && npm ci && npm run build)",
    ),
    pytest.mark.skipif(not AXE.exists(), reason="axe-core absent (cd admin && npm ci)"),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
Page = Any


def _ok(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    env = server_env(
        f"sqlite+aiosqlite:///{tmp_path}/shop.db",
        tmp_path / "keys.json",
        route_limits=False,
        rate_limit_general="",
        jobs_embedded="true",
    )
    done = subprocess.run(
        [EMPORIUM, "users", "create-admin", "--email", ADMIN_EMAIL, "--password-stdin"],
        input=ADMIN_PASSWORD.encode(),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    with serving(env, tmp_path) as (base, _):
        yield base


class Browser:
    """One page, with the checks every screen gets."""

    def __init__(self, page: Page, base: str) -> None:
        self.page = page
        self.base = base
        self.csp_violations: list[str] = []
        page.on("console", self._console)
        page.set_default_timeout(15_000)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)

    def go(self, route: str) -> None:
        self.page.goto(f"{self.base}/admin/#{route}")

    def check(self, name: str) -> None:
        """axe-core on the screen as shown, a screenshot, and no CSP violation so far."""
        self.page.wait_for_load_state("networkidle")
        self.page.evaluate(AXE.read_text(encoding="utf-8"))
        for _ in range(5):  # a refetch may show the (transient) loading spinner: let it pass
            self.page.wait_for_function("() => !document.querySelector('[role=progressbar]')")
            self.page.wait_for_timeout(300)
            # A notification fading in or out has blended colours axe would judge: let every
            # finite animation or transition end first (spinners loop forever: not those).
            self.page.evaluate(
                "() => Promise.all(document.getAnimations()"
                ".filter(a => a.effect && a.effect.getComputedTiming().endTime !== Infinity)"
                ".map(a => a.finished.catch(() => null)))"
            )
            result = self.page.evaluate(
                "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => "
                "n.target.join(' ') + ': ' + n.failureSummary)}))"
            )
            if all(v["id"] != "aria-progressbar-name" for v in result):
                break
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        bad = [v for v in result if v["impact"] in ("serious", "critical")]
        assert not bad, f"{name}: {bad}"
        assert not self.csp_violations, self.csp_violations


def _wait_new_step(previous: str, secret: str) -> str:
    """A TOTP code of a later 30-second step than ``previous`` (codes are accepted once)."""
    totp = pyotp.TOTP(secret)
    while (code := totp.now()) == previous:
        time.sleep(1)
    return code


def _sign_in_and_enrol(b: Browser) -> str:
    page = b.page
    b.go("/login")
    b.check("sign-in")
    page.get_by_label("E-mail").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Start").click()  # staff without MFA: enrolment first
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    code = pyotp.TOTP(secret).now()
    page.get_by_label("Authentication code").fill(code)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("list", name="Recovery codes").locator("li").nth(9).wait_for()
    codes = page.get_by_role("list", name="Recovery codes").locator("li").all_inner_texts()
    assert len(codes) == 10
    b.check("mfa-recovery-codes")
    page.get_by_role("button", name="I have saved them").click()
    page.get_by_role("heading", name="Dashboard").wait_for()
    stored = page.evaluate("() => [localStorage.length, sessionStorage.length, document.cookie]")
    assert stored == [0, 0, ""], "nothing of the session is kept by the browser"
    # A reload forgets the tokens (memory only): sign in again, now with password + TOTP.
    page.reload()
    page.get_by_label("Password").wait_for()
    page.get_by_label("E-mail").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "Traceback" not in alert.inner_text()
    assert alert.inner_text().strip()  # the problem's detail
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Authentication code").fill(_wait_new_step(code, secret))
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("heading", name="Dashboard").wait_for()
    return str(secret)


def _save(page: Page) -> None:
    page.get_by_role("button", name="Save").click()


def _choose(page: Page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option).click()


def _build_catalog(b: Browser) -> None:
    page = b.page
    b.go("/shipping-zones/create")
    page.get_by_role("textbox", name="Name").fill("United States")
    countries = page.get_by_label("Countries")
    countries.fill("US")
    countries.press("Enter")
    b.check("shipping-zone-create")
    _save(page)
    page.get_by_text("United States").first.wait_for()
    b.go("/shipping-methods/create")
    _choose(page, "Zone", "United States")
    page.get_by_role("textbox", name="Name").first.fill("Ground")
    page.get_by_label("Price (minor units)").fill("500")
    _save(page)
    page.get_by_role("cell", name="Ground").wait_for()
    b.go("/categories/create")
    page.get_by_role("textbox", name="Name").fill("Lamps")
    b.check("category-create")
    _save(page)
    page.get_by_role("cell", name="Lamps", exact=True).wait_for()
    b.check("categories")
    b.go("/products/create")
    page.get_by_role("textbox", name=re.compile("^Title")).fill("Brass desk lamp")
    _choose(page, "Category", "Lamps")
    page.get_by_label("Description").fill("A lamp for a desk.")
    page.get_by_label("Published").check()
    for title, sku, stock in (("Small", "LAMP-S", "5"), ("Large", "LAMP-L", "3")):
        page.get_by_role("button", name="Add").last.click()
        page.get_by_label("Variant title").last.fill(title)
        page.get_by_label("SKU").last.fill(sku)
        page.get_by_label("Price (minor units, e.g. cents)").last.fill("2500")
        page.get_by_label("Opening stock").last.fill(stock)
        page.get_by_label("Weight (grams)").last.fill("900")
    b.check("product-create")
    _save(page)
    page.get_by_role("cell", name="LAMP-L").wait_for()
    # stock adjustment with a reason, then the ledger shows it
    page.get_by_role("button", name="Stock…").last.click()
    page.get_by_label("Change (+/- units)").fill("2")
    page.get_by_label("Reason").fill("found in the back room")
    page.get_by_role("button", name="Adjust").click()
    page.get_by_role("cell", name="found in the back room").wait_for()
    b.check("product-show")
    b.go("/products")
    page.get_by_role("cell", name="Brass desk lamp").wait_for()
    b.check("products")


def _customer_buys(api: str) -> dict[str, Any]:
    """The public API shows the product; a customer registers and orders both variants."""
    found = _ok(httpx.get(f"{api}/products", params={"q": "brass lamp"}), 200)["items"]
    assert [p["title"] for p in found] == ["Brass desk lamp"]
    variants = {v["sku"]: v for v in found[0]["variants"]}
    assert (variants["LAMP-S"]["stock"], variants["LAMP-L"]["stock"]) == (5, 5)
    _ok(
        httpx.post(
            f"{api}/auth/register",
            json={
                "email": CUSTOMER_EMAIL,
                "password": CUSTOMER_PASSWORD,
                "phone": PHONE,
                "first_name": "Carla",
            },
        ),
        201,
    )
    tokens = _ok(
        httpx.post(
            f"{api}/auth/login", json={"email": CUSTOMER_EMAIL, "password": CUSTOMER_PASSWORD}
        ),
        200,
    )
    me = {"Authorization": f"Bearer {tokens['access_token']}"}
    items = [
        {"variant_id": variants["LAMP-S"]["id"], "quantity": 2},
        {"variant_id": variants["LAMP-L"]["id"], "quantity": 1},
    ]
    cart = _ok(httpx.post(f"{api}/carts", headers=me, json={"items": items}), 201)
    url = f"{api}/carts/{cart['id']}"
    _ok(httpx.patch(url, headers=me, json={"shipping_address": ADDRESS}), 200)
    methods = _ok(httpx.get(f"{url}/shipping-methods", headers=me), 200)
    assert [m["name"] for m in methods] == ["Ground"]
    _ok(httpx.patch(url, headers=me, json={"shipping_method_id": methods[0]["id"]}), 200)
    order: dict[str, Any] = _ok(
        httpx.post(f"{api}/orders", headers=me, json={"cart_id": cart["id"]}), 201
    )
    assert order["status"] == "pending"
    order["headers"] = me
    return order


def _run_the_order(b: Browser, api: str, order: dict[str, Any]) -> None:
    page = b.page
    b.go("/orders")
    page.get_by_role("cell", name=str(order["number"])).click()
    page.get_by_role("heading", name=f"Order {order['number']}").wait_for()
    b.check("order-pending")
    page.get_by_role("button", name="Record manual payment (unpaid balance)").click()
    page.get_by_text("status paid").wait_for()
    page.get_by_label("Carrier").fill("UPS")
    page.get_by_label("Tracking number").fill("1Z999AA10123456784")
    page.get_by_role("button", name="Fulfil", exact=True).click()
    page.get_by_role("cell", name="1Z999AA10123456784").wait_for()
    page.get_by_role("button", name="Mark delivered").click()
    page.get_by_text("fulfilment delivered").wait_for()
    me = order["headers"]
    small = next(line for line in order["items"] if line["quantity"] == 2)
    _ok(
        httpx.post(
            f"{api}/orders/{order['id']}/returns",
            headers=me,
            json={"lines": [{"order_line_id": small["id"], "quantity": 1, "reason": "too bright"}]},
        ),
        201,
    )
    page.get_by_role("button", name="Refresh").click()  # a reload would sign out
    page.get_by_role("button", name="Receive").click()
    page.get_by_role("button", name="Refund return").click()
    page.get_by_role("cell", name="refunded", exact=True).wait_for()
    b.check("order-returned")
    done = _ok(httpx.get(f"{api}/orders/{order['id']}", headers=me), 200)
    assert done["paid_total"] == order["total"]
    assert 0 < done["refunded_total"] < done["paid_total"]  # a partial refund: one lamp of three
    assert [
        (line["sku"], line["quantity_returned"])
        for line in done["items"]
        if line["quantity_returned"]
    ] == [("LAMP-S", 1)]


def _reveal_and_audit(b: Browser, base: str) -> None:
    page = b.page
    b.go("/users")
    b.check("customers")
    page.get_by_role("row").filter(has_text="c***@example.com").first.click()
    page.get_by_text("Revealing it is recorded in the audit trail").wait_for()
    masked = PHONE not in page.content()
    b.check("customer-masked")
    page.get_by_role("button", name="Reveal").click()
    page.get_by_role("definition").filter(has_text=PHONE).wait_for()
    assert masked, "the customer's phone showed before Reveal was clicked"
    b.go("/audit-events")
    # The filter's text box, by role: once the list has rendered, the column's sort button
    # ("Sort by action ascending") matches the label "Action" too.
    page.get_by_role("textbox", name="Action").fill("user.personal_data_revealed")
    page.get_by_role("cell", name="user.personal_data_revealed").first.wait_for()
    b.check("audit-trail")


def _other_screens(b: Browser) -> None:
    for route, name, text in (
        ("/", "dashboard", "Orders waiting to ship"),
        ("/orders", "orders", "Placed"),
        ("/promotions", "promotions", "Promotions"),
        ("/gift-cards", "gift-cards", "Gift cards"),
        ("/tax-rates", "tax-rates", "Tax rates"),
        ("/webhooks", "webhooks", "Webhooks"),
        ("/jobs", "jobs", "Jobs"),
        ("/api-keys", "api-keys", "API keys"),
        ("/backups", "backups", "Backups"),
        ("/sessions", "sessions", "My sessions"),
        ("/reviews", "reviews", "Reviews"),
    ):
        b.go(route)
        b.page.get_by_text(text).first.wait_for()
        b.check(name)
        if name == "dashboard" and os.environ.get("EMPORIUM_UPDATE_DOCS_SCREENSHOT") == "1":
            b.page.screenshot(path=str(ROOT / "docs" / "admin-dashboard.png"))


def test_the_admin_runs_a_sale_end_to_end(server: str) -> None:
    api = f"{server}/api/v1"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
            b = Browser(context.new_page(), server)
            try:
                _sign_in_and_enrol(b)
                b.check("dashboard-first")
                _build_catalog(b)
                order = _customer_buys(api)
                _run_the_order(b, api, order)
                _other_screens(b)
                _reveal_and_audit(b, server)
            except Exception:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                b.page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
                raise
        finally:
            browser.close()
    assert re.match(r"http://127\.0\.0\.1:\d+$", server)
