"""A test double of the Stripe API: a real HTTP server on 127.0.0.1 (a free port, a thread)
that Stripe's own Python library is pointed at (``EMPORIUM_STRIPE_API_BASE``).

What it serves, with Stripe's shapes (``stripe/openapi``: PaymentIntent, Charge, Refund,
Event, and the ``{"error": {...}}`` body) and Stripe's rules:

- ``POST /v1/payment_intents`` (form-encoded), ``GET /v1/payment_intents/{id}``,
  ``POST /v1/payment_intents/{id}/capture``, ``POST /v1/payment_intents/{id}/cancel``,
  ``POST /v1/refunds``, ``GET /v1/refunds/{id}``; ``Authorization: Bearer <secret key>``
  (``401`` otherwise); unknown parameters ``400 parameter_unknown``.
- ``Idempotency-Key``: the first answer of a request that began executing (2xx, or a
  ``402`` decline) is stored; the same key with the same parameters replays it
  (``Idempotent-Replayed: true``), with other parameters answers ``400 idempotency_error``.
- Test payment methods: ``pm_card_visa`` succeeds (or is authorised, capture ``manual``);
  ``pm_card_chargeDeclined`` (``card_declined``/``generic_decline``) and
  ``pm_card_chargeDeclinedInsufficientFunds`` answer ``402 card_error`` carrying the intent,
  left ``requires_payment_method`` with ``last_payment_error``;
  ``pm_card_authenticationRequired`` answers ``requires_action`` until the test calls
  :meth:`StripeDouble.complete_action`.

It sends the Events each change makes, signed as Stripe signs them (``Stripe-Signature:
t=<unix>,v1=<hex HMAC-SHA256 of "t.body" under the whsec_ secret>``), to ``webhook_url``:
at once, before the API answer leaves (``deliver_immediately``: an event earlier than the
answer), after a delay (``deliver_late``), or held until the test releases them in the order
it chooses, each as often as it likes (``hold``, the default, and :meth:`release`). Held
events can also be taken as signed ``(body, headers)`` pairs (:meth:`take_signed`) for an
app served in-process.

And it misbehaves on demand: :meth:`fail_next` (a 5xx or 429 answer, or a connection reset,
before anything is applied), :meth:`lose_next` (applied, then the connection is reset: the
answer is lost and the client retries with the same key), :meth:`slow_next` (applied, then
answered after a delay).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import httpx

SECRET_KEY = "sk_test_emporium_double_4242"
PUBLISHABLE_KEY = "pk_test_emporium_double_4242"
WEBHOOK_SECRET = "whsec_emporium_double_secret"
API_VERSION = "2026-10-28.endive"
"""The API version the events are rendered in when a request names none."""

Json = dict[str, Any]

DECLINES: dict[str, tuple[str, str, str]] = {
    "pm_card_chargeDeclined": ("card_declined", "generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
}
"""Declining test payment methods: (code, decline_code, message)."""
SUCCEEDS = frozenset({"pm_card_visa", "pm_card_mastercard"})
NEEDS_ACTION = frozenset({"pm_card_authenticationRequired"})
PAYMENT_METHODS = SUCCEEDS | NEEDS_ACTION | set(DECLINES)

CREATE_PARAMS = frozenset(
    {
        "amount",
        "currency",
        "payment_method",
        "confirm",
        "capture_method",
        "metadata",
        "automatic_payment_methods",
        "payment_method_types",
        "description",
        "return_url",
        "expand",
    }
)
CANCELLABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)
MINIMUM_AMOUNT = 50


class ApiError(Exception):
    """An error answer; ``executed`` when the endpoint began (stored for idempotency)."""

    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        extra: Json | None = None,
        executed: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error: Json = {"type": kind, "message": message}
        if code is not None:
            self.error |= {"code": code, "doc_url": f"https://stripe.com/docs/error-codes/{code}"}
        if param is not None:
            self.error["param"] = param
        self.error |= extra or {}
        self.executed = executed


def _invalid(message: str, *, code: str | None = None, param: str | None = None) -> ApiError:
    return ApiError(400, "invalid_request_error", message, code=code, param=param)


def _missing(kind: str, ident: str, status: int = 404, param: str = "id") -> ApiError:
    return ApiError(
        status,
        "invalid_request_error",
        f"No such {kind}: '{ident}'",
        code="resource_missing",
        param=param,
    )


def _money(amount: int) -> str:
    return f"${amount // 100}.{amount % 100:02d}"


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def parse_form(body: bytes) -> Json:
    """Stripe's form encoding (``a[b]=1&c[0]=x``) as nested dicts and lists of strings."""
    out: Json = {}
    for name, value in parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False):
        parts = re.findall(r"[^\[\]]+", name)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _as_lists(out)


def _as_lists(node: Json) -> Json:
    for key, value in node.items():
        if isinstance(value, dict):
            value = _as_lists(value)
            if value and all(k.isdigit() for k in value):
                node[key] = [value[k] for k in sorted(value, key=int)]
            else:
                node[key] = value
    return node


def _integer(params: Json, name: str, default: int | None = None) -> int:
    raw = params.get(name)
    if raw is None:
        if default is not None:
            return default
        raise _invalid(f"Missing required param: {name}.", code="parameter_missing", param=name)
    try:
        return int(raw)
    except ValueError:
        raise _invalid(
            f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name
        ) from None


def _only(params: Json, allowed: frozenset[str]) -> None:
    for name in params:
        if name not in allowed:
            raise _invalid(
                f"Received unknown parameter: {name}", code="parameter_unknown", param=name
            )


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value for ``payload`` (``t=...,v1=...``)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{stamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


@dataclass
class Fault:
    """One planned misbehaviour, used by the next request (whose path starts with
    ``path``, when given)."""

    kind: Literal["fail", "reset", "lose", "slow"]
    status: int = 500
    delay: float = 0.0
    path: str | None = None


@dataclass
class Call:
    """One API request as the double saw it: ``status`` None when no answer was sent."""

    method: str
    path: str
    idempotency_key: str | None
    status: int | None
    replayed: bool = False
    fault: str | None = None


@dataclass
class Delivery:
    """One webhook sent: the receiver's status, or None when it could not be reached."""

    event_id: str
    type: str
    status: int | None


@dataclass
class Answer:
    """What the double answers one request with (``reset``: close without an answer)."""

    status: int = 200
    body: Json = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    delay: float = 0.0
    events: list[Json] = field(default_factory=list)


@dataclass
class _Stored:
    fingerprint: str
    status: int
    body: Json


Route = Callable[[Json, str], tuple[int, Json]]


class StripeDouble:
    """The double's state and behaviour; :func:`running_stripe_api` serves it.

    ``url`` is the API base; ``intents``, ``charges``, ``refunds`` hold the objects by id,
    ``events`` every Event made (in order), ``calls`` every request, ``deliveries`` every
    webhook sent. Thread-safe: the server answers each request in its own thread.
    """

    def __init__(self, secret_key: str = SECRET_KEY, webhook_secret: str = WEBHOOK_SECRET) -> None:
        self.url = ""
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.webhook_url: str | None = None
        self.delivery: Literal["hold", "immediate", "late"] = "hold"
        self.late_seconds = 0.0
        self.intents: dict[str, Json] = {}
        self.charges: dict[str, Json] = {}
        self.refunds: dict[str, Json] = {}
        self.events: list[Json] = []
        self.queued: list[Json] = []
        self.calls: list[Call] = []
        self.deliveries: list[Delivery] = []
        self.lock = threading.RLock()
        self._faults: list[Fault] = []
        self._stored: dict[str, _Stored] = {}
        self._made: list[Json] = []
        self._request: Json = {"id": None, "idempotency_key": None}
        self._version = API_VERSION

    # --- what a test sets -------------------------------------------------------------------

    def hold(self) -> None:
        """Queue events until :meth:`release` (the default)."""
        self.delivery = "hold"

    def deliver_immediately(self) -> None:
        """Send each event as it is made, before the API answer that made it is sent."""
        self.delivery = "immediate"

    def deliver_late(self, seconds: float) -> None:
        """Send each event ``seconds`` after the answer that made it."""
        self.delivery = "late"
        self.late_seconds = seconds

    def fail_next(
        self, count: int = 1, *, status: int | Literal["reset"] = 500, path: str | None = None
    ) -> None:
        """The next ``count`` requests fail before anything is applied: answered ``status``
        (Stripe's ``api_error``, or ``rate_limit`` for 429), or their connection reset."""
        for _ in range(count):
            if status == "reset":
                self._faults.append(Fault("reset", path=path))
            else:
                self._faults.append(Fault("fail", status=status, path=path))

    def lose_next(self, count: int = 1, *, path: str | None = None) -> None:
        """The next ``count`` requests are applied (and stored under their idempotency
        key), then their connection is reset: the answer is lost."""
        self._faults.extend(Fault("lose", path=path) for _ in range(count))

    def slow_next(self, seconds: float, count: int = 1, *, path: str | None = None) -> None:
        """The next ``count`` requests are applied, then answered after ``seconds``."""
        self._faults.extend(Fault("slow", delay=seconds, path=path) for _ in range(count))

    # --- what a test asks ----------------------------------------------------------------

    def calls_to(self, method: str, path: str) -> list[Call]:
        """The requests made to ``method path``."""
        with self.lock:
            return [c for c in self.calls if c.method == method and c.path == path]

    def events_of(self, reference: str) -> list[Json]:
        """The events whose object is ``reference`` or refunds it (``pi_``, ``re_``)."""
        with self.lock:
            return [e for e in self.events if _concerns(e["data"]["object"], reference)]

    def signed(
        self, event: Json, *, secret: str | None = None, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """``event`` as Stripe sends it: the JSON body and the headers, signed with
        ``secret`` (the double's by default) at ``timestamp`` (now by default)."""
        body = json.dumps(event, indent=2).encode()
        signature = sign(body, secret or self.webhook_secret, timestamp)
        return body, {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": signature,
        }

    def take_signed(self) -> list[tuple[bytes, dict[str, str]]]:
        """Take every held event out of the queue, signed, in the order made."""
        with self.lock:
            taken, self.queued = self.queued, []
        return [self.signed(event) for event in taken]

    def release(self, *selectors: str, times: int = 1) -> list[int | None]:
        """Send held events to ``webhook_url``: those named (an event id, or a type for the
        first held event of that type), in the order named, or all in the order made; each
        ``times`` times. Answers the receiver's statuses."""
        with self.lock:
            chosen = [self._pick(s) for s in selectors] if selectors else list(self.queued)
            for event in chosen:
                if event in self.queued:
                    self.queued.remove(event)
        return [status for event in chosen for status in self.send(event, times=times)]

    def send(self, event: Json, *, times: int = 1) -> list[int | None]:
        """Send one event (again) to ``webhook_url``, ``times`` times."""
        if self.webhook_url is None:
            raise AssertionError("the double has no webhook_url to send to")
        statuses = []
        for _ in range(times):
            body, headers = self.signed(event)
            status: int | None
            try:
                status = httpx.post(self.webhook_url, content=body, headers=headers).status_code
            except httpx.HTTPError:
                status = None
            with self.lock:
                self.deliveries.append(Delivery(event["id"], event["type"], status))
            statuses.append(status)
        return statuses

    def _pick(self, selector: str) -> Json:
        for event in self.queued:
            if selector in (event["id"], event["type"]):
                return event
        for event in self.events:
            if selector == event["id"]:
                return event
        raise AssertionError(f"no held event {selector!r}")

    # --- what a customer does (3-D Secure), and what a bank does later ----------------------

    def complete_action(self, intent_id: str, *, succeed: bool = True) -> Json:
        """The customer finishes (or fails) the 3-D Secure step of ``intent_id``; its
        events are sent as the delivery mode says. Answers the intent."""
        with self.lock:
            intent = self.intents[intent_id]
            assert intent["status"] == "requires_action", intent["status"]
            intent["next_action"] = None
            if succeed:
                self._charge(intent)
            else:
                self._fail_authentication(intent)
            made = self._flush()
            answer = copy.deepcopy(intent)
        self.dispatch(made)
        return answer

    def fail_refund(self, refund_id: str, reason: str = "expired_or_canceled_card") -> Json:
        """The bank sends a succeeded refund back: it becomes ``failed``."""
        with self.lock:
            refund = self.refunds[refund_id]
            refund |= {"status": "failed", "failure_reason": reason}
            charge = self.charges[refund["charge"]]
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = False
            self._event("charge.refund.updated", refund)
            self._event("refund.updated", refund)
            self._event("refund.failed", refund)
            made = self._flush()
            answer = copy.deepcopy(refund)
        self.dispatch(made)
        return answer

    # --- serving --------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Answer one HTTP request (``headers`` with lower-case names)."""
        path = urlsplit(target).path
        key = headers.get("idempotency-key")
        fault = self._take_fault(path)
        if fault is not None and fault.kind in ("fail", "reset"):
            answer = _fault_answer(fault)
            self._record(Call(method, path, key, None if answer.reset else answer.status), fault)
            return answer
        answer = self._answer(method, path, headers, body)
        answer.headers |= {"Request-Id": _new_id("req"), "Stripe-Version": self._version}
        if key is not None:
            answer.headers["Idempotency-Key"] = key
        if fault is not None:
            answer.reset = fault.kind == "lose"
            answer.delay = fault.delay
        replayed = answer.headers.get("Idempotent-Replayed") == "true"
        self._record(Call(method, path, key, None if answer.reset else answer.status, replayed))
        return answer

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.path is None or path.startswith(fault.path):
                    self._faults.remove(fault)
                    return fault
        return None

    def _record(self, call: Call, fault: Fault | None = None) -> None:
        if fault is not None:
            call.fault = fault.kind
        with self.lock:
            self.calls.append(call)

    def _answer(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        params = parse_form(body) if method == "POST" else {}
        key = headers.get("idempotency-key") if method == "POST" else None
        fingerprint = f"{method} {path} {json.dumps(params, sort_keys=True)}"
        with self.lock:
            self._version = headers.get("stripe-version") or API_VERSION
            try:
                self._authenticate(headers.get("authorization"))
                stored = self._replay(key, fingerprint)
                if stored is not None:
                    return stored
                self._request = {"id": _new_id("req"), "idempotency_key": key}
                status, answer = self._route(method, path, params)
                if key is not None:
                    self._stored[key] = _Stored(fingerprint, status, copy.deepcopy(answer))
            except ApiError as exc:
                status, answer = exc.status, {"error": exc.error}
                if key is not None and exc.executed:
                    self._stored[key] = _Stored(fingerprint, status, copy.deepcopy(answer))
            return Answer(status, copy.deepcopy(answer), events=self._flush())

    def _authenticate(self, header: str | None) -> None:
        if header is None or not header.startswith("Bearer "):
            raise ApiError(
                401,
                "invalid_request_error",
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
            )
        given = header.removeprefix("Bearer ")
        if not hmac.compare_digest(given, self.secret_key):
            raise ApiError(
                401, "invalid_request_error", f"Invalid API Key provided: {given[:8]}****"
            )

    def _replay(self, key: str | None, fingerprint: str) -> Answer | None:
        stored = self._stored.get(key) if key is not None else None
        if stored is None:
            return None
        if stored.fingerprint != fingerprint:
            raise ApiError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
            )
        answer = Answer(stored.status, copy.deepcopy(stored.body))
        answer.headers["Idempotent-Replayed"] = "true"
        return answer

    def _route(self, method: str, path: str, params: Json) -> tuple[int, Json]:
        routes: list[tuple[str, str, Route]] = [
            ("POST", r"/v1/payment_intents", self._create_intent),
            ("GET", r"/v1/payment_intents/(?P<id>[^/]+)", self._get_intent),
            ("POST", r"/v1/payment_intents/(?P<id>[^/]+)/capture", self._capture),
            ("POST", r"/v1/payment_intents/(?P<id>[^/]+)/cancel", self._cancel),
            ("POST", r"/v1/refunds", self._create_refund),
            ("GET", r"/v1/refunds/(?P<id>[^/]+)", self._get_refund),
        ]
        for verb, pattern, route in routes:
            found = re.fullmatch(pattern, path)
            if verb == method and found is not None:
                return route(params, found.groupdict().get("id") or "")
        raise ApiError(
            404,
            "invalid_request_error",
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
        )

    # --- PaymentIntents ------------------------------------------------------------------

    def _create_intent(self, params: Json, _: str) -> tuple[int, Json]:
        _only(params, CREATE_PARAMS)
        amount = _integer(params, "amount")
        currency = params.get("currency")
        if not currency:
            raise _invalid(
                "Missing required param: currency.", code="parameter_missing", param="currency"
            )
        if amount < MINIMUM_AMOUNT:
            raise _invalid(
                f"Amount must be at least {MINIMUM_AMOUNT} minor units",
                code="amount_too_small",
                param="amount",
            )
        capture = params.get("capture_method", "automatic")
        if capture not in ("automatic", "automatic_async", "manual"):
            raise _invalid(
                "Invalid capture_method: must be one of automatic, automatic_async, or manual",
                param="capture_method",
            )
        method = params.get("payment_method")
        if method is not None and method not in PAYMENT_METHODS:
            raise _missing("PaymentMethod", method, status=400, param="payment_method")
        confirm = params.get("confirm") == "true"
        if confirm:
            _check_return_url(params)
        intent = self._new_intent(params, amount, str(currency).lower(), capture)
        self._event("payment_intent.created", intent)
        if method is not None:
            intent |= {"payment_method": method, "status": "requires_confirmation"}
        if confirm:
            self._confirm(intent)
        return 200, intent

    def _new_intent(self, params: Json, amount: int, currency: str, capture: str) -> Json:
        ident = _new_id("pi")
        automatic = params.get("automatic_payment_methods")
        if automatic is None and "payment_method_types" not in params:
            automatic = {"enabled": "true"}
        intent: Json = {
            "id": ident,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": _automatic(automatic),
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": capture,
            "client_secret": f"{ident}_secret_{secrets.token_urlsafe(18)}",
            "confirmation_method": "automatic",
            "created": int(time.time()),
            "currency": currency,
            "customer": None,
            "description": params.get("description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": None,
            "payment_method_options": {},
            "payment_method_types": list(params.get("payment_method_types") or ["card"]),
            "processing": None,
            "receipt_email": None,
            "review": None,
            "setup_future_usage": None,
            "shipping": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "requires_payment_method",
            "transfer_data": None,
            "transfer_group": None,
        }
        self.intents[ident] = intent
        return intent

    def _confirm(self, intent: Json) -> None:
        method = intent["payment_method"]
        if method in NEEDS_ACTION:
            intent["status"] = "requires_action"
            intent["next_action"] = {
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {"type": "three_d_secure_redirect", "source": _new_id("src")},
            }
            self._event("payment_intent.requires_action", intent)
        elif method in DECLINES:
            self._decline(intent, *DECLINES[method])
        else:
            self._charge(intent)

    def _charge(self, intent: Json) -> None:
        """The card pays: a Charge, captured now or authorised for a manual capture."""
        manual = intent["capture_method"] == "manual"
        charge = self._new_charge(intent, captured=not manual)
        intent["latest_charge"] = charge["id"]
        intent["last_payment_error"] = None
        self._event("charge.succeeded", charge)
        if manual:
            intent |= {"status": "requires_capture", "amount_capturable": intent["amount"]}
            self._event("payment_intent.amount_capturable_updated", intent)
        else:
            intent |= {"status": "succeeded", "amount_received": intent["amount"]}
            self._event("payment_intent.succeeded", intent)

    def _decline(self, intent: Json, code: str, decline_code: str, message: str) -> None:
        charge = self._new_charge(intent, captured=False, failure=(code, message))
        error: Json = {
            "type": "card_error",
            "code": code,
            "decline_code": decline_code,
            "doc_url": f"https://stripe.com/docs/error-codes/{code}",
            "message": message,
            "charge": charge["id"],
            "payment_method": {
                "id": intent["payment_method"],
                "object": "payment_method",
                "type": "card",
            },
        }
        intent |= {
            "status": "requires_payment_method",
            "latest_charge": charge["id"],
            "last_payment_error": error,
        }
        self._event("charge.failed", charge)
        self._event("payment_intent.payment_failed", intent)
        extra = {k: v for k, v in error.items() if k not in ("type", "message", "code")}
        extra |= {"payment_intent": copy.deepcopy(intent)}
        raise ApiError(402, "card_error", message, code=code, extra=extra, executed=True)

    def _fail_authentication(self, intent: Json) -> None:
        code = "payment_intent_authentication_failure"
        intent |= {
            "status": "requires_payment_method",
            "last_payment_error": {
                "type": "card_error",
                "code": code,
                "doc_url": f"https://stripe.com/docs/error-codes/{code}",
                "message": "We are unable to authenticate your payment method. Please choose a "
                "different payment method and try again.",
            },
        }
        self._event("payment_intent.payment_failed", intent)

    def _new_charge(
        self, intent: Json, *, captured: bool, failure: tuple[str, str] | None = None
    ) -> Json:
        ident = _new_id("ch")
        charge: Json = {
            "id": ident,
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"] if captured else 0,
            "amount_refunded": 0,
            "captured": captured,
            "created": int(time.time()),
            "currency": intent["currency"],
            "failure_code": failure[0] if failure else None,
            "failure_message": failure[1] if failure else None,
            "livemode": False,
            "metadata": dict(intent["metadata"]),
            "paid": failure is None,
            "payment_intent": intent["id"],
            "payment_method": intent["payment_method"],
            "refunded": False,
            "refunds": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/charges/{ident}/refunds",
            },
            "status": "failed" if failure else "succeeded",
        }
        self.charges[ident] = charge
        return charge

    def _get_intent(self, _: Json, ident: str) -> tuple[int, Json]:
        return 200, self._intent(ident)

    def _intent(self, ident: str, status: int = 404, param: str = "id") -> Json:
        if ident not in self.intents:
            raise _missing("payment_intent", ident, status, param)
        return self.intents[ident]

    def _capture(self, params: Json, ident: str) -> tuple[int, Json]:
        _only(params, frozenset({"amount_to_capture", "metadata", "expand"}))
        intent = self._intent(ident)
        if intent["status"] != "requires_capture":
            raise _invalid(
                "This PaymentIntent could not be captured because it has a status of "
                f"{intent['status']}. Only a PaymentIntent with one of the following "
                "statuses may be captured: requires_capture.",
                code="payment_intent_unexpected_state",
            )
        amount = _integer(params, "amount_to_capture", intent["amount_capturable"])
        if not 0 < amount <= intent["amount_capturable"]:
            raise _invalid(
                "The amount to capture must be positive and at most the amount capturable "
                f"({intent['amount_capturable']}).",
                code="amount_too_large",
                param="amount_to_capture",
            )
        charge = self.charges[intent["latest_charge"]]
        charge |= {"captured": True, "amount_captured": amount}
        intent |= {"status": "succeeded", "amount_received": amount, "amount_capturable": 0}
        self._event("charge.captured", charge)
        self._event("payment_intent.succeeded", intent)
        return 200, intent

    def _cancel(self, params: Json, ident: str) -> tuple[int, Json]:
        _only(params, frozenset({"cancellation_reason", "expand"}))
        intent = self._intent(ident)
        if intent["status"] not in CANCELLABLE:
            raise _invalid(
                "You cannot cancel this PaymentIntent because it has a status of "
                f"{intent['status']}. Only a PaymentIntent with one of the following statuses "
                f"may be canceled: {', '.join(CANCELLABLE)}.",
                code="payment_intent_unexpected_state",
            )
        intent |= {
            "status": "canceled",
            "canceled_at": int(time.time()),
            "cancellation_reason": params.get("cancellation_reason"),
            "amount_capturable": 0,
            "next_action": None,
        }
        self._event("payment_intent.canceled", intent)
        return 200, intent

    # --- Refunds -------------------------------------------------------------------------

    def _create_refund(self, params: Json, _: str) -> tuple[int, Json]:
        _only(params, frozenset({"payment_intent", "charge", "amount", "metadata", "reason"}))
        charge = self._refundable_charge(params)
        left = charge["amount_captured"] - charge["amount_refunded"]
        if left <= 0:
            raise _invalid(
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = _integer(params, "amount", left)
        if amount > left:
            raise _invalid(
                f"Refund amount ({_money(amount)}) is greater than unrefunded amount on charge "
                f"({_money(left)})",
                code="amount_too_large",
                param="amount",
            )
        refund = self._new_refund(charge, amount, params)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        listed = charge["refunds"]
        listed["data"].insert(0, copy.deepcopy(refund))
        listed["total_count"] = len(listed["data"])
        self._event("refund.created", refund)
        self._event("charge.refunded", charge)
        return 200, refund

    def _refundable_charge(self, params: Json) -> Json:
        if "payment_intent" in params:
            intent = self._intent(params["payment_intent"], 400, "payment_intent")
            if intent["status"] != "succeeded":
                raise _invalid(
                    "This PaymentIntent does not have a successful charge to refund.",
                    param="payment_intent",
                )
            return self.charges[intent["latest_charge"]]
        if "charge" in params:
            if params["charge"] not in self.charges:
                raise _missing("charge", params["charge"], 400, "charge")
            return self.charges[params["charge"]]
        raise _invalid(
            "One of the following params should be provided for this request: payment_intent "
            "or charge.",
            code="parameter_missing",
        )

    def _new_refund(self, charge: Json, amount: int, params: Json) -> Json:
        ident = _new_id("re")
        refund: Json = {
            "id": ident,
            "object": "refund",
            "amount": amount,
            "balance_transaction": _new_id("txn"),
            "charge": charge["id"],
            "created": int(time.time()),
            "currency": charge["currency"],
            "destination_details": {"card": {"type": "refund"}, "type": "card"},
            "metadata": dict(params.get("metadata") or {}),
            "payment_intent": charge["payment_intent"],
            "reason": params.get("reason"),
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
        self.refunds[ident] = refund
        return refund

    def _get_refund(self, _: Json, ident: str) -> tuple[int, Json]:
        if ident not in self.refunds:
            raise _missing("refund", ident)
        return 200, self.refunds[ident]

    # --- events --------------------------------------------------------------------------

    def _event(self, kind: str, obj: Json) -> None:
        event: Json = {
            "id": _new_id("evt"),
            "object": "event",
            "api_version": self._version,
            "created": int(time.time()),
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": dict(self._request),
            "type": kind,
        }
        self.events.append(event)
        self._made.append(event)

    def _flush(self) -> list[Json]:
        made, self._made = self._made, []
        self._request = {"id": None, "idempotency_key": None}
        return made

    def dispatch(self, made: list[Json]) -> None:
        """Send or hold the events one change made, as the delivery mode says."""
        if self.webhook_url is None or self.delivery == "hold":
            with self.lock:
                self.queued.extend(made)
        elif self.delivery == "immediate":
            self._send_all(made)
        else:
            timer = threading.Timer(self.late_seconds, self._send_all, args=(made,))
            timer.daemon = True
            timer.start()

    def _send_all(self, made: list[Json]) -> None:
        for event in made:
            self.send(event)


def _automatic(given: object) -> Json | None:
    if not isinstance(given, dict):
        return None
    automatic: Json = {"enabled": given.get("enabled") == "true"}
    if "allow_redirects" in given:
        automatic["allow_redirects"] = given["allow_redirects"]
    return automatic


def _check_return_url(params: Json) -> None:
    """Stripe's rule: confirming with automatic payment methods that may redirect needs a
    ``return_url``."""
    automatic = params.get("automatic_payment_methods") or {}
    if "payment_method_types" in params or params.get("return_url"):
        return
    if automatic.get("allow_redirects") == "never":
        return
    raise _invalid(
        "This PaymentIntent is configured to accept payment methods enabled in your "
        "Dashboard. Because some of these payment methods might redirect your customer off of "
        "your page, you must provide a `return_url`. If you don't want to accept "
        "redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` "
        "and `automatic_payment_methods[allow_redirects]` to `never` when creating Setup "
        "Intents and Payment Intents."
    )


def _concerns(obj: Json, reference: str) -> bool:
    return reference in (obj.get("id"), obj.get("payment_intent"))


def _fault_answer(fault: Fault) -> Answer:
    if fault.kind == "reset":
        return Answer(reset=True)
    if fault.status == 429:
        error = {
            "type": "invalid_request_error",
            "code": "rate_limit",
            "message": "Too many requests hit the API too quickly.",
        }
    else:
        error = {
            "type": "api_error",
            "message": "An unknown error occurred while processing your request.",
        }
    return Answer(fault.status, {"error": error})


class _Server(ThreadingHTTPServer):
    double: StripeDouble
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        double = self.server.double
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = double.handle(self.command, self.path, headers, body)
        # Held events are queued, immediate ones sent, late ones timed, all before the answer
        # leaves: at Stripe, an event exists as soon as the change it tells of.
        double.dispatch(answer.events)
        time.sleep(answer.delay)
        if answer.reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
        else:
            self._write(answer)

    def _write(self, answer: Answer) -> None:
        payload = json.dumps(answer.body, indent=2).encode()
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client gave up (a timeout)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextmanager
def running_stripe_api(
    secret_key: str = SECRET_KEY, webhook_secret: str = WEBHOOK_SECRET
) -> Iterator[StripeDouble]:
    """A :class:`StripeDouble` served on a free port of 127.0.0.1 until the block ends."""
    double = StripeDouble(secret_key, webhook_secret)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.double = double
    double.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
