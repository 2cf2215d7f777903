"""The OpenAPI document is valid OpenAPI 3.1 and says what the server does: short stable
operationIds, both security schemes, named enums, every problem field, one-of rules."""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from openapi_spec_validator import OpenAPIV31SpecValidator

from conftest import SignIn
from factories import API, assert_problem
from orders.support import ADDRESS, order, stocked_variants

Json = dict[str, Any]
METHODS = ("get", "post", "put", "patch", "delete")


async def _document(client: AsyncTestClient[Litestar]) -> Json:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _operations(doc: Json) -> dict[tuple[str, str], Json]:
    return {
        (method.upper(), path): operation
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


async def test_the_document_is_valid_openapi_3_1(client: AsyncTestClient[Litestar]) -> None:
    doc = await _document(client)
    validator = OpenAPIV31SpecValidator(doc)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors()]
    assert errors == []
    replayed = doc["paths"]["/api/v1/orders"]["post"]["responses"]["201"]["headers"]
    assert replayed["Idempotent-Replayed"]["schema"] == {"type": "string"}


async def test_operation_ids_are_short_stable_camel_case_and_unique(
    client: AsyncTestClient[Litestar],
) -> None:
    operations = _operations(await _document(client))
    ids = [operation["operationId"] for operation in operations.values()]
    assert len(set(ids)) == len(ids)
    for operation_id in ids:
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]{2,29}", operation_id), operation_id
    expected = {
        ("GET", "/api/v1/products"): "listProducts",
        ("GET", "/api/v1/products/{id_or_slug}"): "getProduct",
        ("POST", "/api/v1/orders"): "placeOrder",
        ("POST", "/api/v1/auth/register"): "register",
        ("POST", "/api/v1/cart/items"): "addCartItem",
        ("GET", "/api/v1/users/me"): "getMe",
        ("GET", "/readyz"): "getReadiness",
    }
    assert {key: operations[key]["operationId"] for key in expected} == expected


async def test_api_keys_are_declared_where_they_are_accepted(
    client: AsyncTestClient[Litestar],
) -> None:
    doc = await _document(client)
    assert doc["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "name": "X-API-Key",
        "in": "header",
        "description": doc["components"]["securitySchemes"]["apiKey"]["description"],
    }
    operations = _operations(doc)
    assert operations[("POST", "/api/v1/products")]["security"] == [
        {"bearer": []},
        {"apiKey": ["catalog:write"]},
    ]
    assert {"apiKey": ["inventory:read"]} in operations[
        ("GET", "/api/v1/variants/{variant_id}/stock-movements")
    ]["security"]
    assert operations[("POST", "/api/v1/users")]["security"] == [{"bearer": []}]
    # A customer signs in; a guest holds the cart's token (Cart-Token) and no credential.
    assert operations[("POST", "/api/v1/orders")]["security"] == [{"bearer": []}, {}]
    assert "security" not in operations[("GET", "/api/v1/products")]


def _inline_enums(node: Any, path: str) -> list[str]:
    if isinstance(node, dict):
        found = [path] if "enum" in node else []
        for key, child in node.items():
            found += _inline_enums(child, f"{path}/{key}")
        return found
    if isinstance(node, list):
        return [hit for i, child in enumerate(node) for hit in _inline_enums(child, f"{path}/{i}")]
    return []


async def test_every_enum_is_a_named_component(client: AsyncTestClient[Litestar]) -> None:
    doc = await _document(client)
    schemas = doc["components"]["schemas"]
    named = {name for name, schema in schemas.items() if "enum" in schema}
    assert named >= {"OrderStatus", "ProductSort", "Role", "ApiScope", "StockMovementKind"}
    inline = _inline_enums(doc["paths"], "paths") + [
        hit
        for name, schema in schemas.items()
        if name not in named
        for hit in _inline_enums(schema, name)
    ]
    assert inline == []
    assert schemas["OrderRead"]["properties"]["status"] == {
        "$ref": "#/components/schemas/OrderStatus"
    }


async def test_every_problem_field_is_declared_and_answers_match(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    schemas = (await _document(client))["components"]["schemas"]
    problem_fields = set(schemas["ProblemDetails"]["properties"])
    assert {"type", "title", "status", "detail", "code", "errors", "lines"} <= problem_fields
    line_schema = schemas["ShortLine"]
    assert set(line_schema["required"]) == {"variant_id", "sku", "requested", "available"}
    (variant,) = await stocked_variants(client, admin_headers, 1)
    buyer = await sign_in()
    short = assert_problem(await order(client, buyer, [(variant["id"], 2)]), 409)
    assert set(short) <= problem_fields
    assert [set(line) for line in short["lines"]] == [set(line_schema["properties"])]
    invalid = assert_problem(await order(client, buyer, [(variant["id"], 0)]), 422)
    assert set(invalid) <= problem_fields


async def test_the_one_of_rule_of_post_orders_is_stated_and_enforced(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str], sign_in: SignIn
) -> None:
    schemas = (await _document(client))["components"]["schemas"]
    alternatives = [ref["$ref"].rsplit("/", 1)[1] for ref in schemas["OrderCreate"]["oneOf"]]
    assert alternatives == [
        "OrderCreateFromCart",
        "OrderCreateWithShippingAddress",
        "OrderCreateWithAddressId",
    ]
    from_cart, with_address, with_id = (schemas[name] for name in alternatives)
    assert from_cart["required"] == ["cart_id"]
    assert {"shipping_address", "address_id"}.isdisjoint(from_cart["properties"])
    assert with_address["required"] == ["shipping_address"]
    assert "address_id" not in with_address["properties"]
    assert with_id["required"] == ["address_id"]
    assert "shipping_address" not in with_id["properties"]
    (variant,) = await stocked_variants(client, admin_headers, 5)
    buyer = await sign_in()
    items = [{"variant_id": variant["id"], "quantity": 1}]
    for body in (
        {"items": items},
        {"items": items, "shipping_address": ADDRESS, "address_id": variant["id"]},
        {"cart_id": variant["id"], "shipping_address": ADDRESS},
    ):
        refused = await client.post(f"{API}/orders", json=body, headers=buyer)
        assert_problem(refused, 422, "validation_error")
