"""Settings read from `PARCOURS_*` environment variables and an optional `.env` file.

A bad value stops start-up with a `SettingsError` naming the variable, so an operator
never runs with a half-understood configuration.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "PARCOURS_"


class SettingsError(Exception):
    """One or more settings have a value Parcours cannot use."""


class Settings(BaseSettings):
    """Every setting Parcours reads; the README's configuration table documents each."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(
        default=Path("parcours-data"),
        description="Folder for the embedded SQLite database and generated files.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite at DATA_DIR/parcours.db. "
        "PostgreSQL: postgresql+psycopg://user:password@host/db.",
    )
    host: str = Field(default="127.0.0.1", description="Address `parcours serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `parcours serve` listens on.")
    default_locale: Literal["fr", "en"] = Field(
        default="fr", description="Console language when the browser states no preference."
    )
    timezone: str = Field(
        default="Europe/Paris", description="Retailer's home time zone for display."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Minimum level of log records."
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="Structured JSON logs, or plain text for a terminal."
    )
    session_max_age_s: int = Field(
        default=8 * 3600, ge=60, description="Console session lifetime in seconds."
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed logins allowed per user name in LOGIN_WINDOW_S."
    )
    login_window_s: int = Field(
        default=900, ge=1, description="Window in seconds for counting failed logins."
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body accepted, in bytes."
    )
    secure_cookies: bool = Field(
        default=False, description="Mark console cookies Secure (set true behind HTTPS)."
    )
    worker_in_process: bool = Field(
        default=True, description="Let `parcours serve` run the event consumers in-process."
    )
    worker_poll_s: float = Field(
        default=1.0, gt=0, description="Seconds the worker waits when no event is pending."
    )
    public_url: str = Field(
        default="",
        description="Address customers reach Parcours at, for links in emails "
        "(https://shop.example); empty means http://HOST:PORT.",
    )
    smtp_host: str = Field(
        default="", description="SMTP server for outgoing email; empty writes .eml files instead."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP server port.")
    smtp_username: str = Field(default="", description="SMTP user name (empty: no login).")
    smtp_password: SecretStr = Field(default=SecretStr(""), description="SMTP password.")
    smtp_starttls: bool = Field(default=True, description="Upgrade the SMTP connection with TLS.")
    smtp_from: str = Field(
        default="Parcours <no-reply@localhost>", description="Sender of outgoing email."
    )
    double_opt_in_hours: int = Field(
        default=72, ge=1, description="Hours a double opt-in confirmation link stays valid."
    )
    analytics_engine: Literal["live", "duckdb", "spark"] = Field(
        default="live",
        description="Engine of the console's insight pages: the application database, or "
        "DuckDB/Spark over ANALYTICS_PARQUET.",
    )
    analytics_parquet: str = Field(
        default="",
        description="Parquet export directory (`parcours export parquet DIR`) the duckdb and "
        "spark engines read.",
    )
    retention_anonymous_events_days: int = Field(
        default=395,
        ge=0,
        description="Days kept: events of visitors never identified (0: forever).",
    )
    retention_events_days: int = Field(
        default=1095, ge=0, description="Days kept: events of identified people (0: forever)."
    )
    retention_inactive_profiles_days: int = Field(
        default=1095, ge=0, description="Days after the last contact before a profile is erased."
    )
    retention_consent_proofs_days: int = Field(
        default=1825, ge=0, description="Days kept: superseded consent decisions (0: forever)."
    )
    retention_unconfirmed_days: int = Field(
        default=30, ge=0, description="Days kept: expired, unconfirmed double opt-in requests."
    )
    retention_audit_log_days: int = Field(
        default=365, ge=0, description="Days kept: audit log entries (0: forever)."
    )
    retention_import_reports_days: int = Field(
        default=90, ge=0, description="Days kept: customer import runs and their error reports."
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("only sqlite:/// and postgresql+psycopg:// URLs are supported")
        return value

    @property
    def resolved_public_url(self) -> str:
        """The base of links sent to customers, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        """The URL actually used: the configured one, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'parcours.db').resolve()}"


def describe_validation_error(error: ValidationError) -> str:
    """Turn pydantic's report into one line per variable an operator can act on."""
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        variable = ENV_PREFIX + field.upper()
        lines.append(f"{variable}={item.get('input')!r}: {item['msg']}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read the settings, raising `SettingsError` with the variable names on bad values."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings for entry points (CLI, ASGI server); tests pass their own."""
    return load_settings()
