"""Stripe: payments as PaymentIntents, refunds as Refunds, through Stripe's official library.

Every call goes through ``stripe.StripeClient`` with its asynchronous HTTPX client, to
``EMPORIUM_STRIPE_API_BASE`` (Stripe's API unless pointed at another server, such as the
test double). The library retries a request that failed on the network or with a 409/5xx
answer (``max_network_retries``) with the same idempotency key, so a retry never charges
twice; what still fails after those retries is a :class:`ProviderError`.

How Stripe's answers become Emporium's (``PaymentIntent.status`` → :data:`PaymentState`):

================================================================  ==================
``requires_payment_method``, ``requires_confirmation``,            ``pending``
``processing`` (or any status this code does not know)
the same with ``last_payment_error`` set (a declined attempt)      ``failed``
``requires_action`` (3-D Secure: ``client_secret`` to Stripe.js)   ``requires_action``
``requires_capture``                                               ``authorized``
``succeeded`` (``captured_amount`` = ``amount_received``)          ``captured``
``canceled``                                                       ``cancelled``
================================================================  ==================

Errors: a card declined on confirmation (HTTP 402 ``card_error`` carrying the intent) is
not raised but answered as that intent, ``failed``, with ``failure_code`` the error's
``code`` (``card_declined``, ``expired_card``...; ``decline_code`` when there is no code);
any other 4xx (invalid request, idempotency key reused with other parameters, bad API key)
raises :class:`PaymentDeclined` with Stripe's error code; timeouts, network errors, 429 and
5xx raise :class:`ProviderError`.

A create repeated with the same payment id after Stripe's 24 hours of idempotency would
make a second intent: callers repeat a create only soon after a lost answer
(reconciliation), and retrieve by reference once one is stored.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Mapping
from typing import Any, ClassVar, Literal

import httpx
import stripe
from stripe.params import PaymentIntentCreateParams

from emporium.core.config import Settings
from emporium.payments.providers.base import (
    ORDER_ID_KEY,
    PAYMENT_ID_KEY,
    REFUND_ID_KEY,
    Intent,
    InvalidSignature,
    PaymentDeclined,
    PaymentState,
    ProviderError,
    ProviderEvent,
    RefundResult,
    RefundState,
    payment_key,
    refund_key,
)

DEFAULT_API_BASE = "https://api.stripe.com"

_STATES: dict[str, PaymentState] = {
    "requires_payment_method": "pending",
    "requires_confirmation": "pending",
    "processing": "pending",
    "requires_action": "requires_action",
    "requires_capture": "authorized",
    "succeeded": "captured",
    "canceled": "cancelled",
}
_REFUND_STATES: dict[str, RefundState] = {
    "pending": "pending",
    "requires_action": "pending",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "failed",
}
REFUND_EVENTS = frozenset(
    {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
)
"""Event types whose object is a Refund."""


class HttpxClient(stripe.HTTPClient):
    """The library's HTTP client interface (``stripe.HTTPClient``) over one
    ``httpx.AsyncClient``: asynchronous calls only. The library's own ``HTTPXClient`` hands
    the form body to httpx as ``data=``, which httpx 0.28 deprecates (a warning on every
    request); this one sends it as ``content=``. A network error or timeout is raised as the
    library's retryable ``APIConnectionError``."""

    name: ClassVar[str] = "httpx"

    def __init__(self, timeout_seconds: float) -> None:
        super().__init__()
        self._client = httpx.AsyncClient(timeout=timeout_seconds)

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        """One HTTP exchange: ``(body, status, headers)``."""
        try:
            answer = await self._client.request(method, url, headers=headers, content=post_data)
        except httpx.HTTPError as exc:
            message = f"Network error talking to Stripe: {type(exc).__name__}"
            retry = stripe.APIConnectionError(message, should_retry=True)  # type: ignore[no-untyped-call]
            raise retry from exc
        return answer.content, answer.status_code, answer.headers

    def sleep_async(self, secs: float) -> Awaitable[None]:
        """The pause between two tries."""
        return asyncio.sleep(secs)

    async def close_async(self) -> None:
        """Close the connections."""
        await self._client.aclose()


class StripeProvider:
    """The ``stripe`` provider: one ``StripeClient`` per process, closed with :meth:`aclose`.

    ``timeout_seconds`` bounds each HTTP request; ``max_network_retries`` is how often the
    library repeats one that failed on the network or with a 409/5xx (same idempotency key).
    """

    name: ClassVar[str] = "stripe"

    def __init__(
        self,
        *,
        secret_key: str,
        publishable_key: str | None = None,
        webhook_secret: str | None = None,
        api_base: str = DEFAULT_API_BASE,
        webhook_tolerance_seconds: int = 300,
        timeout_seconds: float = 30.0,
        max_network_retries: int = 2,
    ) -> None:
        self._publishable_key = publishable_key
        self._webhook_secret = webhook_secret
        self._tolerance = webhook_tolerance_seconds
        self._http = HttpxClient(timeout_seconds)
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base.rstrip("/")},
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeProvider:
        """The provider of ``EMPORIUM_STRIPE_*``.

        Raises:
            ValueError: ``EMPORIUM_STRIPE_SECRET_KEY`` is not set.
        """
        if settings.stripe_secret_key is None:
            raise ValueError("the stripe provider needs EMPORIUM_STRIPE_SECRET_KEY")
        webhook = settings.stripe_webhook_secret
        return cls(
            secret_key=settings.stripe_secret_key.get_secret_value(),
            publishable_key=settings.stripe_publishable_key,
            webhook_secret=webhook.get_secret_value() if webhook is not None else None,
            api_base=settings.stripe_api_base,
            webhook_tolerance_seconds=settings.stripe_webhook_tolerance_seconds,
        )

    async def aclose(self) -> None:
        """Close the HTTP connections (at shutdown)."""
        await self._http.close_async()

    def public_settings(self) -> dict[str, str]:
        """``{"publishable_key": "pk_..."}`` when one is configured, else ``{}``."""
        if self._publishable_key is None:
            return {}
        return {"publishable_key": self._publishable_key}

    async def create(
        self,
        *,
        payment_id: uuid.UUID,
        order_id: uuid.UUID,
        amount: int,
        currency: str,
        payment_method: str | None,
        capture: Literal["automatic", "manual"],
    ) -> Intent:
        """``POST /v1/payment_intents`` for ``amount`` minor units of ``currency`` (ISO 4217),
        confirmed at once when a ``payment_method`` (``pm_...``) is given, else left for
        Stripe.js (``client_secret``). Redirect-based methods are not offered (no return
        URL). Idempotency key :func:`payment_key`; a repeat answers the intent as it is now.
        """
        params: PaymentIntentCreateParams = {
            "amount": amount,
            "currency": currency.lower(),
            "capture_method": capture,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "metadata": {PAYMENT_ID_KEY: str(payment_id), ORDER_ID_KEY: str(order_id)},
        }
        if payment_method is not None:
            params["payment_method"] = payment_method
            params["confirm"] = True
        options: stripe.RequestOptions = {"idempotency_key": payment_key(payment_id)}
        return await self._intent(self._intents.create_async(params, options))

    async def retrieve(self, reference: str) -> Intent:
        """``GET /v1/payment_intents/{reference}``: the intent now."""
        return await self._intent(self._intents.retrieve_async(reference))

    async def capture(self, reference: str, amount: int, *, payment_id: uuid.UUID) -> Intent:
        """``POST /v1/payment_intents/{reference}/capture`` of ``amount`` minor units
        (``amount_to_capture``; the rest of the authorisation is released). Idempotency key
        ``payment_key(payment_id, "capture")``."""
        options: stripe.RequestOptions = {"idempotency_key": payment_key(payment_id, "capture")}
        call = self._intents.capture_async(reference, {"amount_to_capture": amount}, options)
        return await self._intent(call)

    async def cancel(self, reference: str, *, payment_id: uuid.UUID) -> Intent:
        """``POST /v1/payment_intents/{reference}/cancel``: void an intent not captured
        (a captured one raises :class:`PaymentDeclined`, ``payment_intent_unexpected_state``).
        Idempotency key ``payment_key(payment_id, "cancel")``."""
        options: stripe.RequestOptions = {"idempotency_key": payment_key(payment_id, "cancel")}
        return await self._intent(self._intents.cancel_async(reference, None, options))

    async def refund(
        self, reference: str, amount: int, *, refund_id: uuid.UUID, payment_id: uuid.UUID
    ) -> RefundResult:
        """``POST /v1/refunds`` of ``amount`` minor units of the intent ``reference``, with
        metadata ``{REFUND_ID_KEY, PAYMENT_ID_KEY}`` and idempotency key
        ``refund_key(refund_id)``. More than is left to refund raises
        :class:`PaymentDeclined` (``amount_too_large``)."""
        metadata = {REFUND_ID_KEY: str(refund_id), PAYMENT_ID_KEY: str(payment_id)}
        params: stripe.params.RefundCreateParams = {
            "payment_intent": reference,
            "amount": amount,
            "metadata": metadata,
        }
        options: stripe.RequestOptions = {"idempotency_key": refund_key(refund_id)}
        try:
            made = await self._client.v1.refunds.create_async(params, options)
            if _replayed(made):
                made = await self._client.v1.refunds.retrieve_async(made.id)
        except stripe.StripeError as exc:
            raise _translated(exc) from exc
        return refund_from(made.to_dict())

    def parse_event(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """Verify ``Stripe-Signature`` (``t=<unix seconds>,v1=<hex HMAC-SHA256 of
        "t.body">`` under the endpoint's ``whsec_`` secret, at most
        ``EMPORIUM_STRIPE_WEBHOOK_TOLERANCE_SECONDS`` old) with the library's own check, then
        read the Event: ``payment_intent.*`` carry an :class:`Intent`; ``refund.created``,
        ``refund.updated``, ``refund.failed``, ``charge.refund.updated`` a
        :class:`RefundResult`, and ``charge.refunded`` one too when its charge lists its
        refunds (the newest); other types neither.

        Raises:
            InvalidSignature: no secret configured; header missing, wrong or stale; the body
                is not a Stripe event.
        """
        if not self._webhook_secret:
            raise InvalidSignature("EMPORIUM_STRIPE_WEBHOOK_SECRET is not set")
        header = next((v for k, v in headers.items() if k.lower() == "stripe-signature"), None)
        try:
            stripe.WebhookSignature.verify_header(
                body, header, self._webhook_secret, self._tolerance
            )
            return event_from(json.loads(body))
        except (stripe.SignatureVerificationError, ValueError, LookupError, TypeError) as exc:
            raise InvalidSignature(str(exc)) from exc

    @property
    def _intents(self) -> stripe.PaymentIntentService:
        return self._client.v1.payment_intents

    async def _intent(self, call: Awaitable[stripe.PaymentIntent]) -> Intent:
        """Await one PaymentIntent call and answer in Emporium's words; an idempotent replay
        is followed by a retrieve, so the answer is the intent as it is now."""
        try:
            found = await call
            if _replayed(found):
                found = await self._intents.retrieve_async(found.id)
            return intent_from(found.to_dict())
        except stripe.CardError as exc:
            declined = _declined_intent(exc)
            if declined is None:
                raise _translated(exc) from exc
            if (exc.headers or {}).get("idempotent-replayed") == "true":
                return await self.retrieve(declined.reference)
            return declined
        except stripe.StripeError as exc:
            raise _translated(exc) from exc


def _replayed(found: stripe.StripeObject) -> bool:
    """True when Stripe answered from its idempotency store (``Idempotent-Replayed``)."""
    response = found.last_response
    return response is not None and response.headers.get("idempotent-replayed") == "true"


def _declined_intent(exc: stripe.CardError) -> Intent | None:
    """The intent a 402 ``card_error`` carries (``error.payment_intent``), if any."""
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error = body.get("error")
    intent = error.get("payment_intent") if isinstance(error, dict) else None
    return intent_from(intent) if isinstance(intent, dict) else None


def _translated(exc: stripe.StripeError) -> Exception:
    """A Stripe library error as :class:`ProviderError` (outcome unknown: network, timeout,
    429, 5xx) or :class:`PaymentDeclined` (any other 4xx: nothing happened)."""
    status = exc.http_status
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return ProviderError(f"stripe: {exc.user_message}")
    if status is None or status >= 500 or status in (409, 429):
        return ProviderError(f"stripe: HTTP {status}: {exc.user_message}")
    error = exc.error
    code = exc.code or (error.type if error is not None else None) or "invalid_request_error"
    return PaymentDeclined(f"stripe: HTTP {status}: {exc.user_message}", code)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _metadata(data: Mapping[str, Any]) -> dict[str, str]:
    raw = data.get("metadata")
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _id_of(value: object) -> str | None:
    """An id, whether the field holds it or the object expanded (``{"id": ...}``)."""
    if isinstance(value, dict):
        return _text(value.get("id"))
    return _text(value)


def intent_from(data: Mapping[str, Any]) -> Intent:
    """A PaymentIntent (JSON object, as the API or an Event gives it) in Emporium's words;
    amounts stay in minor units, the currency is upper-cased (``usd`` → ``USD``)."""
    state = _STATES.get(str(data["status"]), "pending")
    error = data.get("last_payment_error")
    failure = None
    if isinstance(error, dict) and state == "pending":
        state = "failed"
        failure = _text(error.get("code")) or _text(error.get("decline_code")) or "failed"
    return Intent(
        reference=str(data["id"]),
        status=state,
        amount=int(data["amount"]),
        captured_amount=int(data.get("amount_received") or 0) if state == "captured" else 0,
        currency=str(data["currency"]).upper(),
        client_secret=_text(data.get("client_secret")),
        failure_code=failure,
        metadata=_metadata(data),
    )


def refund_from(data: Mapping[str, Any]) -> RefundResult:
    """A Refund (JSON object) in Emporium's words: ``pending``/``requires_action`` →
    ``pending``, ``succeeded``, ``failed``/``canceled`` → ``failed`` (``failure_code`` =
    Stripe's ``failure_reason``); ``payment_reference`` the ``pi_...`` it refunds."""
    state = _REFUND_STATES.get(str(data["status"]), "pending")
    return RefundResult(
        reference=str(data["id"]),
        status=state,
        amount=int(data["amount"]),
        payment_reference=_id_of(data.get("payment_intent")) or "",
        failure_code=_text(data.get("failure_reason")) if state == "failed" else None,
        metadata=_metadata(data),
    )


def _created(item: Mapping[str, Any]) -> int:
    return int(item.get("created") or 0)


def _newest_refund(charge: Mapping[str, Any]) -> RefundResult | None:
    """The newest refund a Charge lists (``refunds.data``, when the API version includes
    it), with the charge's ``payment_intent`` when the refund leaves it out."""
    listed = charge.get("refunds")
    found = listed.get("data") if isinstance(listed, dict) else None
    if not isinstance(found, list) or not found:
        return None
    refunds: list[dict[str, Any]] = [item for item in found if isinstance(item, dict)]
    if not refunds:
        return None
    chosen = max(refunds, key=_created)
    newest = dict(chosen)
    if not newest.get("payment_intent"):
        newest["payment_intent"] = charge.get("payment_intent")
    return refund_from(newest)


def event_from(data: object) -> ProviderEvent:
    """A Stripe Event (parsed JSON) as a :class:`ProviderEvent`.

    Raises:
        LookupError, TypeError, ValueError: not an Event.
    """
    if not isinstance(data, dict) or data.get("object") != "event":
        raise ValueError("not a Stripe event")
    kind = str(data["type"])
    found = data["data"]["object"]
    if not isinstance(found, dict):
        raise TypeError("the event carries no object")
    kept = found.get("object")
    event_id = str(data["id"])
    if kind.startswith("payment_intent.") and kept == "payment_intent":
        return ProviderEvent(id=event_id, type=kind, intent=intent_from(found))
    if kind in REFUND_EVENTS and kept == "refund":
        return ProviderEvent(id=event_id, type=kind, refund=refund_from(found))
    if kind == "charge.refunded" and kept == "charge":
        return ProviderEvent(id=event_id, type=kind, refund=_newest_refund(found))
    return ProviderEvent(id=event_id, type=kind)
