"""Typed settings, read once from ``EMPORIUM_*`` environment variables and an optional ``.env``.

Nothing reads the environment at import time: :func:`load_settings` is called by the CLI (or
by a worker process started by the server) and the result is passed to ``create_app``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal, TypeAlias

from limits import parse_many
from litestar.di import NamedDependency
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///emporium.db"

CommaList = Annotated[list[str], NoDecode]
"""A list setting written in the environment as ``a,b,c``."""


class Settings(BaseSettings):
    """Every setting of Emporium; the README lists them with their defaults."""

    model_config = SettingsConfigDict(
        env_prefix="EMPORIUM_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite+aiosqlite:///FILE or postgresql+asyncpg://...",
    )
    database_pool_size: int = Field(
        default=3,
        ge=1,
        le=200,
        description="Size of the read pools of a process; its write pool gets twice this (see "
        "connections_per_server)",
    )
    database_connect_timeout_seconds: float = Field(
        default=5.0, gt=0, le=120, description="PostgreSQL connection attempt timeout"
    )
    database_pgbouncer: bool = Field(
        default=False,
        description="The database URL is PgBouncer in transaction pooling: cache no prepared "
        "statement and never reuse a statement name",
    )
    database_listen_url: str | None = Field(
        default=None,
        description="Direct (or session-pooled) PostgreSQL URL for the change feed's LISTEN "
        "connection; default: the database URL",
    )
    sqlite_busy_timeout_seconds: float = Field(
        default=10.0,
        ge=0,
        le=600,
        description="How long a SQLite write, or the switch to WAL at start, waits for the lock",
    )
    redis_url: str | None = Field(default=None, description="redis://host:port/db, optional")
    redis_timeout_seconds: float = Field(
        default=0.25, gt=0, le=10, description="Redis connect and command timeout"
    )
    redis_retry_seconds: float = Field(
        default=5.0, gt=0, le=600, description="After a Redis failure, skip Redis this long"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="auto: console lines when standard error is a terminal, else JSON lines",
    )
    tracing: bool = Field(
        default=False,
        description="OpenTelemetry tracing, configured by the standard OTEL_* variables",
    )
    metrics_public: bool = Field(
        default=False, description="Serve /metrics to anyone, not only loopback clients and admins"
    )
    metrics_probe_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=30,
        description="Time limit of each scrape-time probe of /metrics (job queue, outbox lag)",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of `emporium worker`'s /metrics; unset: no metrics endpoint",
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1", description="Address `emporium worker`'s /metrics listens on"
    )
    docs_enabled: bool = Field(default=True, description="Serve /openapi.json and /docs")
    currency: str = Field(default="USD", min_length=3, max_length=3, pattern="^[A-Z]{3}$")
    prices_include_tax: bool = Field(
        default=False,
        description="Shelf prices include tax (EU style): tax_total is the part inside them",
    )
    sql_echo: bool = False
    cache_ttl_seconds: float = Field(
        default=60.0, ge=0, description="Product cache lifetime per entry; 0 turns it off"
    )
    cache_max_entries: int = Field(default=10_000, ge=0, description="Products cached per process")
    key_file: Path = Field(
        default=Path("emporium-keys.json"),
        description="JSON file with the data, blind-index, JWT and pepper keys (never in the DB)",
    )
    jwt_issuer: str = "emporium"
    jwt_audience: str = "emporium-api"
    access_token_minutes: int = Field(default=10, ge=5, le=15)
    customer_idle_timeout_minutes: int = Field(default=7 * 24 * 60, ge=5)
    customer_absolute_timeout_minutes: int = Field(default=30 * 24 * 60, ge=5)
    staff_idle_timeout_minutes: int = Field(default=30, ge=5)
    staff_absolute_timeout_minutes: int = Field(default=12 * 60, ge=5)
    password_hash_concurrency: int = Field(default=4, ge=1, le=64)
    idempotency_key_ttl_hours: int = Field(
        default=24, ge=24, le=30 * 24, description="How long an Idempotency-Key is remembered"
    )
    idempotency_lease_seconds: float = Field(
        default=10.0,
        ge=1,
        le=120,
        description="Time limit of a POST /orders with an Idempotency-Key; a claim whose "
        "process died is taken over once it has passed",
    )
    guest_cart_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Guest carts unchanged this long are deleted (hourly job)",
    )
    jobs_embedded: bool = Field(
        default=True, description="Run the job runner inside each `serve` process"
    )
    jobs_concurrency: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Jobs run at once per runner (a job holds a pooled connection only for its "
        "short transactions; most of its time it waits on SMTP or a webhook endpoint)",
    )
    jobs_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    jobs_lease_seconds: float = Field(
        default=60.0, ge=1, description="A claimed job is retried once its lease expires"
    )
    jobs_max_attempts: int = Field(default=10, ge=1, le=100)
    jobs_backoff_seconds: float = Field(default=2.0, gt=0, description="First retry delay")
    jobs_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    jobs_retention_days: int = Field(default=7, ge=1, description="Finished jobs and events kept")
    audit_retention_days: int = Field(
        default=400, ge=1, description="Audit events older than this are pruned (audit prune)"
    )
    mail_backend: Literal["file", "smtp"] = "file"
    mail_dir: Path = Field(default=Path("mail"), description="Where the file backend writes")
    mail_from: str = "Emporium <no-reply@localhost>"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    smtp_ca_file: Path | None = Field(
        default=None, description="CA bundle to trust for STARTTLS instead of the system's"
    )
    storefront_url: str = Field(
        default="http://localhost:3000", description="Base of links in e-mails"
    )
    account_token_minutes: int = Field(default=10, ge=1, le=10)
    webhooks_allow_private: bool = Field(
        default=False, description="Allow webhook URLs on loopback, link-local, private hosts"
    )
    webhooks_timeout_seconds: float = Field(default=10.0, gt=0, le=30)
    webhooks_max_redirects: int = Field(default=3, ge=0, le=10)
    stripe_secret_key: SecretStr | None = Field(
        default=None, description="Stripe secret API key (sk_live_... or sk_test_...)"
    )
    stripe_publishable_key: str | None = Field(
        default=None, description="Stripe publishable key (pk_...), given to storefronts"
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None, description="Signing secret (whsec_...) of the Stripe webhook endpoint"
    )
    stripe_api_base: str = Field(
        default="https://api.stripe.com",
        description="Base URL of the Stripe API (another server, such as a test double)",
    )
    stripe_webhook_tolerance_seconds: int = Field(
        default=300,
        ge=1,
        le=3600,
        description="Oldest Stripe-Signature timestamp accepted on a webhook, in seconds",
    )
    mfa_issuer: str = Field(
        default="Emporium", min_length=1, max_length=64, description="TOTP issuer in apps"
    )
    mfa_challenge_minutes: int = Field(default=5, ge=1, le=15, description="mfa_token lifetime")
    login_delay_after_failures: int = Field(default=3, ge=1, le=100)
    login_delay_seconds: float = Field(default=1.0, ge=0, le=60)
    login_delay_max_seconds: float = Field(default=30.0, ge=0, le=600)
    login_lock_after_failures: int = Field(default=10, ge=2, le=100)
    login_lock_minutes: int = Field(default=15, ge=1, le=24 * 60)
    login_failure_window_minutes: int = Field(default=60, ge=1, le=24 * 60)
    login_ip_lock_after_failures: int = Field(default=100, ge=10, le=100_000)
    trusted_proxies: CommaList = Field(
        default_factory=list,
        description="Addresses/CIDRs of reverse proxies whose X-Forwarded-For is believed",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Request body cap")
    cors_allow_origins: CommaList = Field(
        default_factory=list, description="Origins allowed by CORS; empty: no CORS answers"
    )
    cors_allow_credentials: bool = False
    order_payment_minutes: int = Field(
        default=60,
        ge=1,
        le=30 * 24 * 60,
        description="A pending order not paid within this many minutes expires (cancelled)",
    )
    return_window_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="Customers (and guests) may ask to return units this many days after "
        "their order was delivered; staff at any time",
    )
    payment_providers: CommaList = Field(
        default_factory=lambda: ["manual", "test"],
        description="Enabled payment providers: manual, test, stripe (stripe needs its key)",
    )
    payments_capture: Literal["automatic", "manual"] = Field(
        default="automatic",
        description="automatic: a card payment is captured at once; manual: authorised, "
        "captured by staff (POST /payments/{id}/capture)",
    )
    payments_reconcile_minutes: int = Field(
        default=5,
        ge=1,
        le=24 * 60,
        description="Payments pending or awaiting action this long are asked about at the "
        "provider (reconciliation job)",
    )
    payments_gift_cards: bool = Field(
        default=True,
        description="Offer the gift_card payment provider (gift cards issued by staff)",
    )
    staff_email: str | None = Field(
        default=None,
        description="Where alerts for staff go (money captured on a cancelled order, refunded "
        "automatically); unset: they are only logged",
    )
    payments_test_secret: SecretStr | None = Field(
        default=None,
        description="Signing secret of the test provider's events; default: derived from "
        "the key file",
    )
    backup_recipients: CommaList = Field(
        default_factory=list,
        description="age public keys (age1...) backups are encrypted to; the server holds "
        "no key that opens them",
    )
    backup_destinations: CommaList = Field(
        default_factory=list,
        description="Where every backup is copied: file:///folder and s3://bucket/prefix",
    )
    backup_interval_minutes: int = Field(
        default=1440,
        ge=0,
        le=7 * 24 * 60,
        description="A backup every this many minutes once destinations and recipients are "
        "set (run by the job runner, once per period across all workers); 0: never",
    )
    backup_keep_last: int = Field(default=7, ge=1, le=10_000, description="Newest kept")
    backup_keep_daily_days: int = Field(
        default=14, ge=0, le=3650, description="Newest backup of each of these days kept"
    )
    backup_keep_weekly_weeks: int = Field(
        default=8, ge=0, le=520, description="Newest backup of each of these weeks kept"
    )
    backup_spool_dir: Path = Field(
        default=Path("backups-spool"),
        description="Local folder for encrypted parts until every destination has them",
    )
    backup_pg_bin_dir: Path | None = Field(
        default=None, description="Folder of pg_dump and pg_restore; default: the PATH"
    )
    backup_s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint; default: AWS (or AWS_ENDPOINT_URL)"
    )
    backup_s3_region: str | None = Field(
        default=None, description="S3 region; default: AWS_REGION / AWS_DEFAULT_REGION"
    )
    backup_s3_access_key_id: str | None = Field(
        default=None, description="S3 access key; default: the standard AWS variables"
    )
    backup_s3_secret_access_key: SecretStr | None = Field(
        default=None, description="S3 secret key; default: the standard AWS variables"
    )
    # Rate limits: "N/second|minute|hour|day", several separated by ";", "" turns one off.
    rate_limit_general: str = "1200/minute"
    rate_limit_login: str = "10/minute;100/hour"
    rate_limit_login_account: str = "5/minute;30/hour"
    rate_limit_register: str = "5/minute;30/hour"
    rate_limit_mfa: str = "5/minute;30/hour"
    rate_limit_password_reset: str = "5/minute;20/hour"  # noqa: S105 (not a password)
    rate_limit_review_post: str = "5/minute;50/day"
    rate_limit_checkout: str = "10/minute;100/hour"
    rate_limit_cart: str = "60/minute;1000/hour"
    rate_limit_promotion_code: str = "10/minute;100/hour"
    rate_limit_gift_card_balance: str = "10/minute;100/hour"

    @field_validator(
        "trusted_proxies",
        "cors_allow_origins",
        "payment_providers",
        "backup_recipients",
        "backup_destinations",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """``EMPORIUM_TRUSTED_PROXIES=10.0.0.0/8,::1`` becomes a list."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        """Every trusted proxy is an address or a CIDR network."""
        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError names the bad entry
        return value

    @field_validator("cors_allow_origins")
    @classmethod
    def _no_null_origin(cls, value: list[str]) -> list[str]:
        """The ``null`` origin (sandboxed frames, local files) is never trusted (ASVS 14.5.3)."""
        if "null" in value:
            raise ValueError("the 'null' origin cannot be allowed")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        """No wildcard CORS origin with credentials (any site could act as the signed-in
        user; OWASP ASVS 14.5.3), and every rate limit in limits' notation
        (``"10/minute;100/hour"``; ``""`` for none)."""
        if self.cors_allow_credentials and "*" in self.cors_allow_origins:
            raise ValueError("EMPORIUM_CORS_ALLOW_ORIGINS='*' cannot allow credentials")
        for name, limits in self.rate_limit_policies().items():
            try:
                if limits.strip():
                    parse_many(limits)
            except ValueError as exc:
                raise ValueError(f"EMPORIUM_RATE_LIMIT_{name.upper()}: {exc}") from exc
        return self

    @model_validator(mode="after")
    def _payment_providers_usable(self) -> Settings:
        """Every listed payment provider is known, and ``stripe`` comes with its secret key
        (a start-up error naming the setting, not a failure at the first payment)."""
        unknown = set(self.payment_providers) - {"manual", "test", "stripe"}
        if unknown:
            raise ValueError(f"EMPORIUM_PAYMENT_PROVIDERS: unknown {', '.join(sorted(unknown))}")
        if "stripe" in self.payment_providers and self.stripe_secret_key is None:
            raise ValueError(
                "EMPORIUM_PAYMENT_PROVIDERS lists stripe: set EMPORIUM_STRIPE_SECRET_KEY "
                "(and EMPORIUM_STRIPE_WEBHOOK_SECRET), or remove stripe from the list"
            )
        return self

    @model_validator(mode="after")
    def _backups_usable(self) -> Settings:
        """Backup destinations come with recipients (and the other way round), each
        destination is ``file:///...`` or ``s3://bucket[/prefix]`` and each recipient an
        age X25519 public key: a start-up error naming the setting, not a failed backup."""
        if bool(self.backup_destinations) != bool(self.backup_recipients):
            raise ValueError(
                "set both EMPORIUM_BACKUP_DESTINATIONS and EMPORIUM_BACKUP_RECIPIENTS (or neither)"
            )
        for url in self.backup_destinations:
            if not url.startswith(("file:///", "s3://")) or url in ("file:///", "s3://"):
                raise ValueError(f"EMPORIUM_BACKUP_DESTINATIONS: {url!r} is not file:/// or s3://")
        for key in self.backup_recipients:
            if not key.startswith("age1"):
                raise ValueError("EMPORIUM_BACKUP_RECIPIENTS: every entry is an age1... key")
        return self

    def rate_limit_policies(self) -> dict[str, str]:
        """Every named rate-limit policy (``login``, ``general``, ...) and its limits."""
        prefix = "rate_limit_"
        return {
            name.removeprefix(prefix): str(getattr(self, name))
            for name in type(self).model_fields
            if name.startswith(prefix)
        }

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        """Accept only the two async drivers Emporium is tested on."""
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB")
        return value

    @property
    def connections_per_server(self) -> int:
        """Most PostgreSQL connections one ``serve`` worker process opens: the write pool
        (2 x pool), the read pool, the raw product-read pool, and one ``LISTEN`` connection
        of the change feed (4 x pool + 1)."""
        return 4 * self.database_pool_size + 1

    @property
    def connections_per_worker(self) -> int:
        """Most PostgreSQL connections one ``emporium worker`` process opens: its write pool
        (2 x pool)."""
        return 2 * self.database_pool_size

    @property
    def is_sqlite(self) -> bool:
        """True on the embedded default database."""
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL or an in-memory database."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1].split("?", 1)[0]
        return None if path in ("", ":memory:") else Path(path)


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment (and ``.env``), with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]


SettingsDep: TypeAlias = NamedDependency[Settings]
"""Route parameter type of the application's settings (inject as ``settings: SettingsDep``)."""
