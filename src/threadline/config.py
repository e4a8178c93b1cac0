"""One Settings object for the whole of Threadline.

Every field carries a description: `threadline config` prints them and docs/configuration.md lists them
(tests/test_config.py fails when the two drift apart).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Messaging's pacing settings (threadline.messaging.quiet_hours, .frequency_caps read them the same way).
_QUIET_HOURS = re.compile(r"((?:[01]\d|2[0-3]):[0-5]\d)-((?:[01]\d|2[0-3]):[0-5]\d)")
_FREQUENCY_CAP = re.compile(r"(\d{1,4})/(\d{1,4})d")

CHANNELS = ("web", "app", "store", "call_center", "email", "sms", "social", "chat", "other")

# Placeholder secrets that must never protect a real deployment (full-stack-fastapi-template habit).
_PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "dev"}
MIN_ENCRYPTION_KEY_LENGTH = 32
# Identifiers are matched and searched by value and names make the display and search name, so neither
# can be encrypted; kept in step with threadline.identity's built-in kinds and profiles.state's NAME_KEYS.
UNENCRYPTABLE_TRAITS = frozenset(
    {"email", "phone", "user_id", "anonymous_id", "name", "full_name", "fullName"}
    | {"first_name", "firstName", "last_name", "lastName"}
)
# Personal traits masked for viewers without the pii permission unless THREADLINE_MASKED_TRAITS says
# otherwise (threadline.privacy.masking decides how each is masked).
DEFAULT_MASKED_TRAITS = (
    "email",
    "phone",
    "mobile",
    "name",
    "first_name",
    "last_name",
    "full_name",
    "firstName",
    "lastName",
    "fullName",
    "address",
    "street",
    "postal_code",
    "postalCode",
    "birthday",
    "birthdate",
    "date_of_birth",
    "id_number",
    "ip",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="THREADLINE_", extra="ignore")

    database_url: str = Field(
        "sqlite:///./threadline.db",
        description="SQLAlchemy URL of the database: sqlite:///path (embedded, default) or "
        "postgresql+psycopg://user@host/db (production).",
    )
    secret_key: str = Field(
        "",
        description="Secret used to sign sessions and invitation links and to key hashes. Empty means a "
        "random key per process (fine for a laptop; set it in production, the same in every server "
        "process, so that sessions survive restarts and failed sign-ins are counted together).",
    )
    default_region: str = Field(
        "US",
        description="ISO 3166 region used to parse phone numbers written without a country code "
        "(e.g. CN, US, GB).",
    )
    timezone: str = Field(
        "UTC",
        description="IANA time zone of the business: imported times without an offset are read in it "
        "(a till export is in local time).",
    )
    identifier_kinds: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["loyalty_id", "wechat_openid", "device_id"],
        description="Extra identifier kinds taken from traits and context.traits (comma separated). "
        "device_id is also read from context.device.id.",
    )
    identity_limits: dict[str, int] = Field(
        default_factory=lambda: {"user_id": 1},
        description="Merge protection: the most identifiers of a kind one profile may hold, as JSON "
        '(e.g. {"user_id": 1, "email": 5}). A merge or link that would pass a limit is blocked and '
        "recorded with its reason.",
    )
    max_message_bytes: int = Field(32 * 1024, description="Largest accepted ingestion message (bytes).")
    max_batch_bytes: int = Field(500 * 1024, description="Largest accepted ingestion request body (bytes).")
    sqlite_synchronous: str = Field(
        "NORMAL",
        description="SQLite synchronous pragma. NORMAL (with WAL) survives a killed process; FULL also "
        "survives a power cut, at a cost in write speed.",
    )
    admin_email: str = Field("admin@example.com", description="Email of the first admin `make run` creates.")
    admin_password: str = Field(
        "",
        description="Password of the first admin `make run` creates; empty means a random one, printed once.",
    )
    demo_customers: int = Field(
        200, description="How many demo customers `make run` loads into an empty database."
    )
    login_max_failures: int = Field(
        5,
        ge=1,
        description="Wrong passwords in a row after which an account is locked (sign-in page).",
    )
    login_lockout_minutes: int = Field(
        15,
        ge=1,
        description="How long a locked account stays locked, in minutes; even the right password is "
        "refused meanwhile.",
    )
    secure_cookies: bool = Field(
        False,
        description="Mark the session cookie Secure, so browsers only send it over HTTPS. Turn it on "
        "whenever the workspace is served over HTTPS (directly or behind a proxy).",
    )
    invite_valid_days: int = Field(
        7, ge=1, description="How many days an invitation link (/invite/...) stays valid."
    )
    # The background worker (threadline.jobs, docs/worker.md).
    worker_poll_seconds: float = Field(
        2.0,
        gt=0,
        description="How often an idle background worker looks for due jobs, in seconds.",
    )
    job_lease_seconds: int = Field(
        300,
        ge=10,
        description="How long a worker holds a job it claimed before another worker may take it over, in "
        "seconds. A running worker renews the lease every third of it; a stopped one lets it run out.",
    )
    job_retry_seconds: int = Field(
        30,
        ge=1,
        description="Wait before retrying a failed job, in seconds; it doubles with every further failure "
        "(30 s, 1 min, 2 min, ...), up to a day.",
    )
    job_max_attempts: int = Field(
        5,
        ge=1,
        description="How many times a job is tried before it is marked failed, with its last error kept.",
    )
    worker_shutdown_seconds: int = Field(
        30,
        ge=0,
        description="On SIGTERM or SIGINT, how long a worker lets its current job finish, in seconds, "
        "before it stops the job and puts it back in the queue for another worker.",
    )
    resolve_every_hours: int = Field(
        24,
        ge=0,
        description="Run batch identity resolution (`threadline resolve`) in the background every this "
        "many hours; 0 turns the schedule off.",
    )
    resolve_at_hour: int = Field(
        3,
        ge=0,
        le=23,
        description="Hour of the day (UTC) the identity-resolution schedule counts from: with the default "
        "interval of 24 hours, resolution runs daily at this hour.",
    )
    jobs_keep_days: int = Field(
        30,
        ge=0,
        description="Days a finished (done or failed) job is kept for inspection before a daily job "
        "deletes it; 0 keeps them all.",
    )

    privacy_key: str = Field(
        "",
        description="Key of the suppression list's hashes of erased identifiers and of unsubscribe links. "
        "Empty means a random key made once and kept in the database; set it in production so that "
        "a copy of the database alone cannot test guessed emails against the list.",
    )

    # Outbound messages (threadline.messaging, docs/messaging.md).
    smtp_host: str = Field(
        "",
        description="Host name of the SMTP relay that sends email. Empty means sending is disabled: "
        "messages are stored and stay queued, saying so.",
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="Port of the SMTP relay.")
    smtp_username: str = Field(
        "", description="User name for the SMTP relay; empty means no login (a relay that trusts the host)."
    )
    smtp_password: str = Field("", description="Password for the SMTP relay; from the environment only.")
    smtp_starttls: bool = Field(
        True,
        description="Upgrade the SMTP connection with STARTTLS before logging in and sending; turn it off "
        "only for a relay on the same host or private network.",
    )
    mail_from: str = Field(
        "",
        description="The From address of email Threadline sends (e.g. Shop <news@shop.example>); needed "
        "when THREADLINE_SMTP_HOST is set.",
    )
    public_url: str = Field(
        "",
        description="Base URL customers reach this Threadline at (e.g. https://crm.shop.example), for links "
        "in messages such as unsubscribe links; needed when THREADLINE_SMTP_HOST is set.",
    )
    email_tracking: bool = Field(
        True,
        description="Track email opens (a 1x1 image) and link clicks (links go through a signed redirect "
        "at THREADLINE_PUBLIC_URL), as Email Opened and Email Link Clicked on the timeline, for customers "
        "who granted analytics consent by email; off sends links as written and records no open or click.",
    )
    quiet_hours: str = Field(
        "",
        description="When marketing, analytics and personalisation messages are held, in each customer's "
        "local time (their timezone trait, else THREADLINE_TIMEZONE), as HH:MM-HH:MM (e.g. 21:00-08:00); "
        "one asked for inside them goes out when they end. Empty turns quiet hours off; service messages "
        "are never held.",
    )
    frequency_caps: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="At most N marketing, analytics and personalisation messages per customer per channel "
        "in any D days, as N/Dd rules, comma separated (e.g. 1/1d,3/7d: one a day and three a week); a "
        "message over a cap is refused (reason: frequency cap). Empty means no caps; service messages are "
        "never capped.",
    )

    # Outbound SMS, WhatsApp, WeChat and social messages through a provider webhook (docs/messaging.md).
    sms_webhook_url: str = Field(
        "",
        description="URL Threadline POSTs outbound SMS to (the provider, or an adapter in front of it), "
        "signed with THREADLINE_PROVIDER_WEBHOOK_SECRET. Empty means SMS sending is disabled: messages "
        "are stored and stay queued, saying so.",
    )
    whatsapp_webhook_url: str = Field(
        "",
        description="URL Threadline POSTs outbound WhatsApp messages to; empty means WhatsApp sending is "
        "disabled.",
    )
    chat_poll_seconds: float = Field(
        2.0,
        gt=0,
        le=60,
        description="How often an open web chat stream also reads the database for replies stored by "
        "another server process, in seconds (replies stored by its own process arrive at once).",
    )
    wechat_webhook_url: str = Field(
        "",
        description="URL Threadline POSTs outbound WeChat messages to; empty means WeChat sending is "
        "disabled.",
    )
    social_webhook_url: str = Field(
        "",
        description="URL Threadline POSTs outbound social messages (direct messages) to; empty means "
        "social sending is disabled.",
    )
    provider_webhook_secret: str = Field(
        "",
        description="Key of the HMAC-SHA256 signature on every outbound provider webhook request "
        "(X-Threadline-Signature); needed when a *_WEBHOOK_URL is set. From the environment only.",
    )

    # Destinations: webhooks that receive events and segment changes (docs/destinations.md).
    destination_max_attempts: int = Field(
        6,
        ge=1,
        le=20,
        description="How many times a delivery to a destination is tried before it is dead-lettered; "
        "retries wait 1 min, 5 min, 30 min, 2 h, then 12 h. Dead letters can be retried by hand.",
    )
    destination_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        description="How long one delivery to a destination may take to connect and answer, in seconds; "
        "a slower answer counts as a failure and is retried.",
    )

    # Inbound email (threadline.service, docs/service.md#email-channel).
    smtp_inbound_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of the inbound SMTP server that turns customers' emails into conversations; "
        "`threadline serve` starts it beside HTTP when set, `threadline smtp` runs it alone. 0 turns it off.",
    )
    smtp_inbound_host: str = Field(
        "127.0.0.1",
        description="Interface the inbound SMTP server listens on; 0.0.0.0 to take mail from other hosts "
        "(usually the MX relay in front of it).",
    )
    inbound_addresses: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Recipients the inbound SMTP server accepts mail for (comma separated): full addresses "
        "(support@shop.example) or a whole domain (@shop.example). Empty accepts none; other recipients "
        "are refused with 550.",
    )
    max_follow_up_file_bytes: int = Field(
        10_000_000,
        ge=1,
        description="Largest file a rep may attach to a follow-up, in bytes; a larger one is refused naming "
        "the file and nothing is stored.",
    )
    max_attachment_bytes: int = Field(
        10_000_000,
        ge=0,
        description="Largest attachment kept from an inbound message, in bytes; a larger one is recorded "
        "by name and size but its content is not kept, and the message itself still arrives.",
    )

    # Protection (docs/privacy.md#protection): masking, field-level encryption, rate limits.
    masked_traits: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_MASKED_TRAITS),
        description="Trait keys shown masked to users without the pii permission (comma separated), "
        "besides every identifier; emails and phones keep a hint (j***@example.com, 138****8000), "
        "names their first letter, other traits nothing.",
    )
    encrypted_traits: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Trait keys encrypted before anything stores them (comma separated), in profiles, "
        "trait history and events alike; needs THREADLINE_ENCRYPTION_KEYS. Identifiers and name keys "
        "cannot be encrypted (they must stay searchable).",
    )
    encryption_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Keys of the encrypted traits, comma separated, newest first: new values are "
        "encrypted with the first, and the others still decrypt until `threadline privacy rotate-keys` "
        "has re-encrypted everything. Each at least 32 characters; from the environment only.",
    )
    ingest_rate_limit: float = Field(
        10_000,
        ge=0,
        description="Messages per second one write key may send, on average, per server process; "
        "past it ingestion answers 429 with Retry-After. 0 turns the limit off.",
    )
    ingest_rate_burst: int = Field(
        50_000,
        ge=1,
        description="Messages one write key may send at once above its rate (the token bucket's size), "
        "per server process.",
    )
    login_rate_limit: int = Field(
        20,
        ge=0,
        description="Sign-in attempts per minute from one client IP address, per server process, on top "
        "of the per-account lockout; past it the sign-in page answers 429. 0 turns the limit off.",
    )

    # Service surveys (docs/service.md#surveys).
    survey_ces: bool = Field(
        False,
        description="Also ask the Customer Effort Score (CES, 1-7) in the survey emailed after a "
        "conversation is resolved, besides CSAT (1-5).",
    )
    nps_every_days: int = Field(
        90,
        ge=0,
        description="Email the NPS question (0-10) to customers who had a service conversation in the "
        "last this many days and were not asked in that time, checked daily; 0 turns the NPS schedule off.",
    )

    @field_validator(
        "identifier_kinds",
        "masked_traits",
        "encrypted_traits",
        "encryption_keys",
        "inbound_addresses",
        "frequency_caps",
        mode="before",
    )
    @classmethod
    def _split_kinds(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("secret_key")
    @classmethod
    def _reject_placeholder(cls, value: str) -> str:
        if value.lower() in _PLACEHOLDER_SECRETS:
            raise ValueError("THREADLINE_SECRET_KEY is a placeholder; set a long random value")
        return value

    @model_validator(mode="after")
    def _check_encryption(self) -> Settings:
        """Encrypted traits need keys, and cannot be identifiers or names (privacy/encryption.py):
        refused when the settings load, so a server never starts storing what it cannot protect."""
        if not self.encrypted_traits:
            return self
        if not self.encryption_keys:
            raise ValueError(
                "THREADLINE_ENCRYPTED_TRAITS lists traits to encrypt but THREADLINE_ENCRYPTION_KEYS is "
                f"empty: set it to a random secret of at least {MIN_ENCRYPTION_KEY_LENGTH} characters "
                '(python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        for number, key in enumerate(self.encryption_keys, 1):
            if len(key) < MIN_ENCRYPTION_KEY_LENGTH:
                raise ValueError(
                    f"THREADLINE_ENCRYPTION_KEYS: key {number} is shorter than "
                    f"{MIN_ENCRYPTION_KEY_LENGTH} characters"
                )
        refused = sorted(set(self.encrypted_traits) & (UNENCRYPTABLE_TRAITS | set(self.identifier_kinds)))
        if refused:
            raise ValueError(
                f"THREADLINE_ENCRYPTED_TRAITS: {', '.join(refused)} cannot be encrypted: identifiers and "
                "names must stay searchable (they are masked for roles without the pii permission)"
            )
        return self

    @model_validator(mode="after")
    def _check_mail(self) -> Settings:
        """Every email carries a From address and an unsubscribe link (docs/messaging.md): a relay
        without them would send mail that breaks the law or the rules of mailbox providers."""
        if self.smtp_host:
            needed = {"THREADLINE_MAIL_FROM": self.mail_from, "THREADLINE_PUBLIC_URL": self.public_url}
            missing = [name for name, value in needed.items() if not value]
            if missing:
                raise ValueError(f"THREADLINE_SMTP_HOST is set but {' and '.join(missing)} is not")
        return self

    @model_validator(mode="after")
    def _check_provider_webhooks(self) -> Settings:
        """A provider must be able to tell Threadline's requests from anyone's: no URL without a key."""
        urls = {
            "THREADLINE_SMS_WEBHOOK_URL": self.sms_webhook_url,
            "THREADLINE_WHATSAPP_WEBHOOK_URL": self.whatsapp_webhook_url,
            "THREADLINE_WECHAT_WEBHOOK_URL": self.wechat_webhook_url,
            "THREADLINE_SOCIAL_WEBHOOK_URL": self.social_webhook_url,
        }
        for name, url in urls.items():
            if url and not url.startswith(("http://", "https://")):
                raise ValueError(f"{name}: must be an http:// or https:// URL")
            if url and not self.provider_webhook_secret:
                raise ValueError(f"{name} is set but THREADLINE_PROVIDER_WEBHOOK_SECRET is not")
        return self

    @field_validator("quiet_hours")
    @classmethod
    def _check_quiet_hours(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        match = _QUIET_HOURS.fullmatch(value.replace(" ", ""))
        if match is None:
            raise ValueError("THREADLINE_QUIET_HOURS: write it as HH:MM-HH:MM, e.g. 21:00-08:00")
        start, end = match.group(1, 2)
        if start == end:
            raise ValueError("THREADLINE_QUIET_HOURS: the start and end are the same time")
        return f"{start}-{end}"

    @field_validator("frequency_caps")
    @classmethod
    def _check_frequency_caps(cls, value: list[str]) -> list[str]:
        for rule in value:
            match = _FREQUENCY_CAP.fullmatch(rule.replace(" ", ""))
            if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
                raise ValueError(
                    f"THREADLINE_FREQUENCY_CAPS: {rule!r} is not N/Dd (at most N messages in D days, "
                    "both at least 1, e.g. 3/7d)"
                )
        return [rule.replace(" ", "") for rule in value]

    @field_validator("sqlite_synchronous")
    @classmethod
    def _check_synchronous(cls, value: str) -> str:
        if value.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError("must be one of OFF, NORMAL, FULL, EXTRA")
        return value.upper()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
