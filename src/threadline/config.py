"""One Settings object for the whole of Threadline.

Every field carries a description: `threadline config` prints them and docs/configuration.md lists them
(tests/test_config.py fails when the two drift apart).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CHANNELS = ("web", "app", "store", "call_center", "email", "sms", "social", "chat", "other")

# Placeholder secrets that must never protect a real deployment (full-stack-fastapi-template habit).
_PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "dev"}


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

    @field_validator("identifier_kinds", mode="before")
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

    @field_validator("sqlite_synchronous")
    @classmethod
    def _check_synchronous(cls, value: str) -> str:
        if value.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError("must be one of OFF, NORMAL, FULL, EXTRA")
        return value.upper()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
