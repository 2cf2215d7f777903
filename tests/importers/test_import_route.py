"""``POST /api/v1/imports/shopify-csv``: staff import a Shopify export over HTTP and read the
importer's report; a broken file is refused whole."""

from __future__ import annotations

from pathlib import Path

from factories import API, Client, all_products, assert_problem

FIXTURES = Path(__file__).parent / "fixtures"
URL = f"{API}/imports/shopify-csv"


async def test_staff_import_a_shopify_export_and_again_changes_nothing(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """The fixture catalog arrives with integer prices; a second import reports no change."""
    csv = (FIXTURES / "catalog.csv").read_text(encoding="utf-8")
    first = await client.post(URL, json={"csv": csv}, headers=admin_headers)
    assert first.status_code == 200, first.text
    report = first.json()
    assert report["changed"] is True
    assert report["counts"]["products"]["created"] >= 1
    assert report["problems"] == []
    products = await all_products(client, admin_headers)
    tee = next(p for p in products if p["title"] == "Classic Tee")
    assert all(isinstance(v["price"], int) for v in tee["variants"])

    again = await client.post(URL, json={"csv": csv}, headers=admin_headers)
    assert again.status_code == 200, again.text
    assert again.json()["changed"] is False
    assert "nothing changed" in again.json()["summary"]


async def test_a_broken_file_is_refused_whole_with_its_lines(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """422 ``import_invalid`` naming the lines; not even the good product is imported."""
    csv = (FIXTURES / "broken.csv").read_text(encoding="utf-8")
    response = await client.post(URL, json={"csv": csv}, headers=admin_headers)
    assert_problem(response, 422, "import_invalid")
    assert all(e["loc"].startswith("line ") for e in response.json()["errors"])
    titles = {p["title"] for p in await all_products(client, admin_headers)}
    assert "Good Hoodie" not in titles


async def test_skip_invalid_imports_the_good_products_and_reports_the_rest(
    client: Client, admin_headers: dict[str, str]
) -> None:
    """With ``skip_invalid`` the valid products are imported and the others are listed."""
    csv = (FIXTURES / "broken.csv").read_text(encoding="utf-8")
    response = await client.post(
        URL, json={"csv": csv, "skip_invalid": True}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["counts"]["products"]["skipped"] >= 1
    assert report["problems"]
    titles = {p["title"] for p in await all_products(client, admin_headers)}
    assert "Good Hoodie" in titles


async def test_an_oversized_file_is_refused(client: Client, admin_headers: dict[str, str]) -> None:
    """Over 1,000,000 characters: 422 naming the field, and its valid product not imported."""
    head = "Handle,Title,Variant SKU,Variant Price\nbig-mug,Big Mug,BIG-MUG,9.50\n"
    big = head + "," * 1_000_000
    response = await client.post(URL, json={"csv": big}, headers=admin_headers)
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "csv"]
    titles = {p["title"] for p in await all_products(client, admin_headers)}
    assert "Big Mug" not in titles
