"""The Stripe provider against the Stripe API double (``doubles.stripe_api``): what a
payment, a capture, a decline, 3-D Secure, a refund and a webhook look like in Emporium's
words, and what happens when Stripe's network misbehaves."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import pytest
from pydantic import SecretStr

from doubles.stripe_api import SECRET_KEY, WEBHOOK_SECRET, StripeDouble, sign
from doubles.webhook_sink import running_webhook_sink
from emporium.core.config import Settings
from emporium.payments.providers.base import (
    ORDER_ID_KEY,
    PAYMENT_ID_KEY,
    REFUND_ID_KEY,
    Intent,
    InvalidSignature,
    PaymentDeclined,
    ProviderError,
    ProviderEvent,
    payment_key,
    refund_key,
)
from emporium.payments.providers.stripe import StripeProvider

Make = Callable[..., StripeProvider]


@pytest.fixture
async def make_provider(stripe_api: StripeDouble) -> AsyncIterator[Make]:
    """Providers pointed at the double (closed after the test)."""
    made: list[StripeProvider] = []

    def make(**overrides: Any) -> StripeProvider:
        options: dict[str, Any] = {
            "secret_key": SECRET_KEY,
            "publishable_key": "pk_test_double",
            "webhook_secret": WEBHOOK_SECRET,
            "api_base": stripe_api.url,
            "timeout_seconds": 5.0,
        }
        provider = StripeProvider(**(options | overrides))
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


@pytest.fixture
def provider(make_provider: Make) -> StripeProvider:
    return make_provider()


async def pay(
    provider: StripeProvider,
    payment_method: str | None = "pm_card_visa",
    *,
    amount: int = 2599,
    capture: Literal["automatic", "manual"] = "automatic",
    payment_id: uuid.UUID | None = None,
    order_id: uuid.UUID | None = None,
) -> Intent:
    return await provider.create(
        payment_id=payment_id or uuid.uuid4(),
        order_id=order_id or uuid.uuid4(),
        amount=amount,
        currency="EUR",
        payment_method=payment_method,
        capture=capture,
    )


def parsed(provider: StripeProvider, stripe_api: StripeDouble) -> list[ProviderEvent]:
    """Every event the double holds, signed as Stripe does, through parse_event."""
    return [provider.parse_event(body, headers) for body, headers in stripe_api.take_signed()]


def by_type(events: list[ProviderEvent]) -> dict[str, ProviderEvent]:
    return {event.type: event for event in events}


# --- payments --------------------------------------------------------------------------------


async def test_a_visa_card_pays_at_once(provider: StripeProvider, stripe_api: StripeDouble) -> None:
    payment_id, order_id = uuid.uuid4(), uuid.uuid4()
    intent = await pay(provider, payment_id=payment_id, order_id=order_id)

    assert intent.status == "captured"
    assert (intent.amount, intent.captured_amount, intent.currency) == (2599, 2599, "EUR")
    assert intent.reference.startswith("pi_")
    assert intent.client_secret is not None
    assert intent.client_secret.startswith(f"{intent.reference}_secret_")
    assert intent.metadata == {PAYMENT_ID_KEY: str(payment_id), ORDER_ID_KEY: str(order_id)}
    at_stripe = stripe_api.intents[intent.reference]
    assert (at_stripe["amount"], at_stripe["currency"], at_stripe["status"]) == (
        2599,
        "eur",
        "succeeded",
    )
    [call] = stripe_api.calls_to("POST", "/v1/payment_intents")
    assert call.idempotency_key == payment_key(payment_id)


async def test_without_a_payment_method_the_intent_waits_for_the_browser(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    intent = await pay(provider, None)

    assert intent.status == "pending"
    assert intent.failure_code is None
    assert intent.client_secret is not None
    assert stripe_api.intents[intent.reference]["status"] == "requires_payment_method"


async def test_manual_capture_authorises_then_captures(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    payment_id = uuid.uuid4()
    intent = await pay(provider, capture="manual", payment_id=payment_id)
    assert (intent.status, intent.captured_amount) == ("authorized", 0)
    assert (await provider.retrieve(intent.reference)).status == "authorized"

    captured = await provider.capture(intent.reference, 2000, payment_id=payment_id)

    assert (captured.status, captured.amount, captured.captured_amount) == ("captured", 2599, 2000)
    [call] = stripe_api.calls_to("POST", f"/v1/payment_intents/{intent.reference}/capture")
    assert call.idempotency_key == payment_key(payment_id, "capture")
    again = await provider.capture(intent.reference, 2000, payment_id=payment_id)
    assert (again.status, again.captured_amount) == ("captured", 2000)
    assert stripe_api.intents[intent.reference]["amount_received"] == 2000


async def test_capturing_an_intent_that_is_not_authorised_is_refused(
    provider: StripeProvider,
) -> None:
    intent = await pay(provider)

    with pytest.raises(PaymentDeclined) as refused:
        await provider.capture(intent.reference, intent.amount, payment_id=uuid.uuid4())

    assert refused.value.code == "payment_intent_unexpected_state"


async def test_a_declined_card_is_a_failed_intent_not_an_exception(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    intent = await pay(provider, "pm_card_chargeDeclined")

    assert (intent.status, intent.failure_code, intent.captured_amount) == (
        "failed",
        "card_declined",
        0,
    )
    at_stripe = stripe_api.intents[intent.reference]
    assert at_stripe["status"] == "requires_payment_method"
    assert at_stripe["last_payment_error"]["decline_code"] == "generic_decline"
    assert (await provider.retrieve(intent.reference)).status == "failed"


async def test_three_d_secure_waits_for_the_customer(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    intent = await pay(provider, "pm_card_authenticationRequired")
    assert intent.status == "requires_action"
    assert intent.client_secret is not None
    assert (await provider.retrieve(intent.reference)).status == "requires_action"

    stripe_api.complete_action(intent.reference)

    done = await provider.retrieve(intent.reference)
    assert (done.status, done.captured_amount) == ("captured", 2599)


async def test_three_d_secure_failed_by_the_customer_fails_the_payment(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    intent = await pay(provider, "pm_card_authenticationRequired")

    stripe_api.complete_action(intent.reference, succeed=False)

    failed = await provider.retrieve(intent.reference)
    assert (failed.status, failed.failure_code) == (
        "failed",
        "payment_intent_authentication_failure",
    )


async def test_cancel_voids_an_authorisation_and_not_a_capture(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    payment_id = uuid.uuid4()
    held = await pay(provider, capture="manual", payment_id=payment_id)

    voided = await provider.cancel(held.reference, payment_id=payment_id)

    assert (voided.status, voided.captured_amount) == ("cancelled", 0)
    [call] = stripe_api.calls_to("POST", f"/v1/payment_intents/{held.reference}/cancel")
    assert call.idempotency_key == payment_key(payment_id, "cancel")
    paid = await pay(provider)
    with pytest.raises(PaymentDeclined) as refused:
        await provider.cancel(paid.reference, payment_id=uuid.uuid4())
    assert refused.value.code == "payment_intent_unexpected_state"
    assert stripe_api.intents[paid.reference]["status"] == "succeeded"


async def test_the_same_payment_id_with_other_parameters_is_refused(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    payment_id, order_id = uuid.uuid4(), uuid.uuid4()
    await pay(provider, payment_id=payment_id, order_id=order_id)

    with pytest.raises(PaymentDeclined) as refused:
        await pay(provider, amount=9999, payment_id=payment_id, order_id=order_id)

    assert refused.value.code == "idempotency_error"
    assert len(stripe_api.intents) == 1


async def test_a_wrong_api_key_is_refused(make_provider: Make, stripe_api: StripeDouble) -> None:
    provider = make_provider(secret_key="sk_test_not_the_one")

    with pytest.raises(PaymentDeclined):
        await pay(provider)

    assert stripe_api.intents == {}


async def test_an_unknown_reference_is_refused(provider: StripeProvider) -> None:
    with pytest.raises(PaymentDeclined) as refused:
        await provider.retrieve("pi_does_not_exist")

    assert refused.value.code == "resource_missing"


# --- a network that misbehaves -----------------------------------------------------------


async def test_a_lost_answer_is_retried_by_the_library_and_charges_once(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    payment_id = uuid.uuid4()
    stripe_api.lose_next(1)

    intent = await pay(provider, payment_id=payment_id)

    assert intent.status == "captured"
    assert len(stripe_api.intents) == 1
    assert len(stripe_api.charges) == 1
    tries = stripe_api.calls_to("POST", "/v1/payment_intents")
    assert [(c.status, c.replayed) for c in tries] == [(None, False), (200, True)]
    assert {c.idempotency_key for c in tries} == {payment_key(payment_id)}


async def test_create_again_after_a_lost_answer_finds_the_same_intent_as_it_is_now(
    make_provider: Make, stripe_api: StripeDouble
) -> None:
    provider = make_provider(max_network_retries=0)
    payment_id, order_id = uuid.uuid4(), uuid.uuid4()
    stripe_api.lose_next(1)

    with pytest.raises(ProviderError):
        await pay(
            provider, "pm_card_authenticationRequired", payment_id=payment_id, order_id=order_id
        )
    [reference] = stripe_api.intents
    stripe_api.complete_action(reference)
    again = await pay(
        provider, "pm_card_authenticationRequired", payment_id=payment_id, order_id=order_id
    )

    assert again.reference == reference
    assert (again.status, again.captured_amount) == ("captured", 2599)
    assert len(stripe_api.intents) == 1
    assert len(stripe_api.charges) == 1


async def test_server_errors_beyond_the_retries_are_provider_errors(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    stripe_api.fail_next(3, status=500)

    with pytest.raises(ProviderError):
        await pay(provider)

    assert stripe_api.intents == {}
    assert len(stripe_api.calls_to("POST", "/v1/payment_intents")) == 3


async def test_one_server_error_is_retried_with_the_same_key(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    payment_id = uuid.uuid4()
    stripe_api.fail_next(1, status=503)

    intent = await pay(provider, payment_id=payment_id)

    assert intent.status == "captured"
    tries = stripe_api.calls_to("POST", "/v1/payment_intents")
    assert [c.status for c in tries] == [503, 200]
    assert {c.idempotency_key for c in tries} == {payment_key(payment_id)}


@pytest.mark.parametrize("failure", [429, "reset"])
async def test_rate_limits_and_resets_are_provider_errors(
    make_provider: Make, stripe_api: StripeDouble, failure: int | Literal["reset"]
) -> None:
    provider = make_provider(max_network_retries=0)
    intent = await pay(provider)
    stripe_api.fail_next(1, status=failure)

    with pytest.raises(ProviderError):
        await provider.retrieve(intent.reference)

    assert (await provider.retrieve(intent.reference)).status == "captured"


async def test_a_timeout_is_a_provider_error_and_the_payment_is_found_later(
    make_provider: Make, stripe_api: StripeDouble
) -> None:
    provider = make_provider(timeout_seconds=0.3, max_network_retries=0)
    payment_id, order_id = uuid.uuid4(), uuid.uuid4()
    stripe_api.slow_next(1.0)

    with pytest.raises(ProviderError):
        await pay(provider, payment_id=payment_id, order_id=order_id)
    again = await pay(provider, payment_id=payment_id, order_id=order_id)

    assert again.status == "captured"
    assert len(stripe_api.intents) == 1


# --- refunds --------------------------------------------------------------------------------


async def test_partial_refunds_up_to_the_amount_and_not_beyond(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    payment_id = uuid.uuid4()
    intent = await pay(provider, payment_id=payment_id)
    first_id = uuid.uuid4()

    first = await provider.refund(intent.reference, 1000, refund_id=first_id, payment_id=payment_id)

    assert (first.status, first.amount, first.payment_reference) == (
        "succeeded",
        1000,
        intent.reference,
    )
    assert first.reference.startswith("re_")
    assert first.metadata == {REFUND_ID_KEY: str(first_id), PAYMENT_ID_KEY: str(payment_id)}
    [call] = stripe_api.calls_to("POST", "/v1/refunds")
    assert call.idempotency_key == refund_key(first_id)
    with pytest.raises(PaymentDeclined) as refused:
        await provider.refund(intent.reference, 1600, refund_id=uuid.uuid4(), payment_id=payment_id)
    assert refused.value.code == "amount_too_large"
    rest = await provider.refund(
        intent.reference, 1599, refund_id=uuid.uuid4(), payment_id=payment_id
    )
    assert (rest.status, rest.amount) == ("succeeded", 1599)
    charge = stripe_api.charges[stripe_api.intents[intent.reference]["latest_charge"]]
    assert (charge["amount_refunded"], charge["refunded"]) == (2599, True)


async def test_a_refund_repeated_with_the_same_id_refunds_once(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    payment_id, refund_id = uuid.uuid4(), uuid.uuid4()
    intent = await pay(provider, payment_id=payment_id)
    stripe_api.lose_next(1, path="/v1/refunds")

    first = await provider.refund(intent.reference, 500, refund_id=refund_id, payment_id=payment_id)
    second = await provider.refund(
        intent.reference, 500, refund_id=refund_id, payment_id=payment_id
    )

    assert first.reference == second.reference
    assert len(stripe_api.refunds) == 1
    charge = stripe_api.charges[stripe_api.intents[intent.reference]["latest_charge"]]
    assert charge["amount_refunded"] == 500


async def test_refunding_an_authorisation_is_refused(provider: StripeProvider) -> None:
    payment_id = uuid.uuid4()
    intent = await pay(provider, capture="manual", payment_id=payment_id)

    with pytest.raises(PaymentDeclined):
        await provider.refund(intent.reference, 100, refund_id=uuid.uuid4(), payment_id=payment_id)


# --- webhooks -------------------------------------------------------------------------------


async def test_the_events_of_a_card_payment(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    intent = await pay(provider)

    events = parsed(provider, stripe_api)

    assert [e.type for e in events] == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]
    created, charge, succeeded = events
    assert created.intent is not None
    assert created.intent.status == "pending"
    assert (charge.intent, charge.refund) == (None, None)
    assert succeeded.intent == intent
    assert len({e.id for e in events}) == 3


async def test_the_events_of_a_decline_a_capture_and_three_d_secure(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    declined = await pay(provider, "pm_card_chargeDeclined")
    failed = by_type(parsed(provider, stripe_api))["payment_intent.payment_failed"].intent
    assert failed == declined
    assert failed is not None
    assert failed.failure_code == "card_declined"

    payment_id = uuid.uuid4()
    held = await pay(provider, capture="manual", payment_id=payment_id)
    authorised = by_type(parsed(provider, stripe_api))["payment_intent.amount_capturable_updated"]
    assert authorised.intent == held
    await provider.capture(held.reference, 1500, payment_id=payment_id)
    captured = by_type(parsed(provider, stripe_api))["payment_intent.succeeded"].intent
    assert captured is not None
    assert (captured.status, captured.captured_amount) == ("captured", 1500)

    waiting = await pay(provider, "pm_card_authenticationRequired")
    action = by_type(parsed(provider, stripe_api))["payment_intent.requires_action"].intent
    assert action == waiting
    stripe_api.complete_action(waiting.reference)
    done = by_type(parsed(provider, stripe_api))["payment_intent.succeeded"].intent
    assert done is not None
    assert (done.reference, done.status) == (waiting.reference, "captured")


async def test_the_events_of_a_cancel(provider: StripeProvider, stripe_api: StripeDouble) -> None:
    payment_id = uuid.uuid4()
    held = await pay(provider, capture="manual", payment_id=payment_id)
    parsed(provider, stripe_api)

    await provider.cancel(held.reference, payment_id=payment_id)

    [event] = parsed(provider, stripe_api)
    assert event.type == "payment_intent.canceled"
    assert event.intent is not None
    assert event.intent.status == "cancelled"


async def test_the_events_of_refunds(provider: StripeProvider, stripe_api: StripeDouble) -> None:
    payment_id = uuid.uuid4()
    intent = await pay(provider, payment_id=payment_id)
    parsed(provider, stripe_api)
    first = await provider.refund(
        intent.reference, 700, refund_id=uuid.uuid4(), payment_id=payment_id
    )
    parsed(provider, stripe_api)
    second = await provider.refund(
        intent.reference, 300, refund_id=uuid.uuid4(), payment_id=payment_id
    )

    events = by_type(parsed(provider, stripe_api))

    assert events["refund.created"].refund == second
    charge_refunded = events["charge.refunded"].refund
    assert charge_refunded is not None
    assert (charge_refunded.reference, charge_refunded.payment_reference) == (
        second.reference,
        intent.reference,
    )
    stripe_api.fail_refund(first.reference)
    failed = by_type(parsed(provider, stripe_api))
    for kind in ("refund.updated", "refund.failed", "charge.refund.updated"):
        refund = failed[kind].refund
        assert refund is not None
        assert (refund.reference, refund.status, refund.failure_code) == (
            first.reference,
            "failed",
            "expired_or_canceled_card",
        )


async def test_a_signature_that_does_not_hold_is_refused(
    make_provider: Make, stripe_api: StripeDouble
) -> None:
    provider = make_provider(webhook_tolerance_seconds=300)
    await pay(provider)
    event = stripe_api.events[-1]
    body, headers = stripe_api.signed(event)
    assert provider.parse_event(body, headers).type == "payment_intent.succeeded"
    assert provider.parse_event(body, {k.lower(): v for k, v in headers.items()}).intent

    wrong_secret = stripe_api.signed(event, secret="whsec_someone_else")
    tampered = body.replace(b'"amount": 2599', b'"amount": 1')
    assert tampered != body
    stale = stripe_api.signed(event, timestamp=int(time.time()) - 301)
    missing = {k: v for k, v in headers.items() if k != "Stripe-Signature"}
    for bad_body, bad_headers in [
        wrong_secret,
        (tampered, headers),
        stale,
        (body, missing),
        (body, headers | {"Stripe-Signature": "nonsense"}),
    ]:
        with pytest.raises(InvalidSignature):
            provider.parse_event(bad_body, bad_headers)
    recent = stripe_api.signed(event, timestamp=int(time.time()) - 200)
    assert provider.parse_event(*recent).id == event["id"]


async def test_a_signed_body_that_is_not_an_event_is_refused(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    for body in (b"not json", json.dumps({"object": "charge"}).encode(), b"[]"):
        with pytest.raises(InvalidSignature):
            provider.parse_event(body, {"Stripe-Signature": sign(body, stripe_api.webhook_secret)})


async def test_without_a_webhook_secret_every_event_is_refused(
    make_provider: Make, stripe_api: StripeDouble
) -> None:
    provider = make_provider(webhook_secret=None)
    await pay(provider)
    body, headers = stripe_api.take_signed()[0]

    with pytest.raises(InvalidSignature):
        provider.parse_event(body, headers)


async def test_events_sent_early_late_twice_and_out_of_order(
    provider: StripeProvider, stripe_api: StripeDouble
) -> None:
    with running_webhook_sink() as sink:
        stripe_api.webhook_url = sink.url
        stripe_api.deliver_immediately()
        await pay(provider)
        assert len(sink.received) == 3  # all sent before the API answered

        stripe_api.deliver_late(1.0)
        await pay(provider)
        assert len(sink.received) == 3
        sink.wait_for(6)

        stripe_api.hold()
        intent = await pay(provider)
        stripe_api.release("payment_intent.succeeded", "payment_intent.created", times=2)
        got = sink.wait_for(10)

    events = [provider.parse_event(r.body, r.headers) for r in got]
    last = events[6:]
    assert [e.type for e in last] == ["payment_intent.succeeded"] * 2 + [
        "payment_intent.created"
    ] * 2
    assert last[0] == last[1]
    assert last[0].intent == intent
    assert [e.type for e in parsed(provider, stripe_api)] == ["charge.succeeded"]


async def test_settings_make_the_provider() -> None:
    settings = Settings(
        stripe_secret_key=SecretStr(SECRET_KEY),
        stripe_publishable_key="pk_test_x",
        stripe_webhook_secret=SecretStr(WEBHOOK_SECRET),
        stripe_api_base="http://127.0.0.1:9",
    )

    provider = StripeProvider.from_settings(settings)
    await provider.aclose()

    assert provider.public_settings() == {"publishable_key": "pk_test_x"}
    assert StripeProvider.name == "stripe"
    with pytest.raises(ValueError, match="EMPORIUM_STRIPE_SECRET_KEY"):
        StripeProvider.from_settings(Settings())
