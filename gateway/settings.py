"""Settings, each overridable by a ``GATEWAY_*`` environment variable."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.reads import RESERVED_CONNECTIONS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=None, extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/gateway.db",
        description="Plain URL: sqlite:///path/to/file.db or postgresql://user@host:port/db.",
    )
    log_format: str = Field(default="auto", pattern="^(auto|json|console)$")
    log_level: str = "info"
    log_file: Path | None = Field(
        default=None, description="Also write JSON logs to this file (they are NIR-redacted too)."
    )
    var_dir: Path = Path("var")
    issuer: str = Field(
        default="http://127.0.0.1:8000",
        description="Public base URL of the gateway: the tokens' iss and the token endpoint's aud.",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key (urlsafe base64, 32 bytes) that encrypts private keys and secrets at rest. "
            "Every process of one deployment must share it; when unset, the embedded default "
            "keeps one in <var_dir>/master.key."
        ),
    )
    pole_emploi_url: str = Field(
        default="http://127.0.0.1:8100",
        description="Base URL of Pôle emploi's job-seeker status API (the ACRE evidence source).",
    )
    pole_emploi_client_id: str = Field(
        default="gateway-demo", description="OAuth client id of the gateway at Pôle emploi."
    )
    pole_emploi_client_secret: SecretStr = Field(
        default=SecretStr("gateway-demo-secret"),
        description="OAuth client secret at Pôle emploi; the default only fits the mock API.",
    )
    pole_emploi_timeout_seconds: float = Field(
        default=3.0, gt=0, le=30, description="Time allowed for one call to Pôle emploi."
    )
    # OAuth authorisation server and token checks (gateway/oauth).
    access_token_lifetime_seconds: int = Field(
        default=600, ge=30, le=3600, description="Lifetime of the access tokens issued."
    )
    token_audience: str | None = Field(
        default=None,
        description="The access tokens' aud (the data API); defaults to <issuer>/api.",
    )
    token_leeway_seconds: int = Field(
        default=30, ge=0, le=120, description="Clock skew tolerated on exp, nbf and iat."
    )
    client_assertion_max_lifetime_seconds: int = Field(
        default=300,
        ge=30,
        le=3600,
        description="Longest a private_key_jwt client assertion may remain valid (exp - now).",
    )
    client_credential_lifetime_days: int = Field(
        default=365, ge=1, le=1095, description="Default validity of a client's keys or secret."
    )
    credential_expiry_warning_days: int = Field(
        default=30, ge=1, le=180, description="Warn a partner this long before its credential ends."
    )
    max_request_body_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        description=(
            "The largest request body accepted, in bytes; larger ones get 413 "
            "`request.too_large` before more of them is read. The default holds a CFP batch "
            "of the most items a batch may carry several times over."
        ),
    )
    rate_limit_per_minute: int = Field(
        default=600,
        ge=1,
        description="Requests per minute per client and scope when its habilitation sets none.",
    )
    token_status_refresh_seconds: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description=(
            "How stale a process's view of revoked tokens, disabled clients and habilitations "
            "may be when the change came from another process (0: read it on every request)."
        ),
    )
    token_claims_cache_size: int = Field(
        default=10_000, ge=0, description="Verified access tokens kept in memory until exp."
    )
    oauth_max_concurrent_requests: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Token, revocation and introspection requests worked on at once by a "
        "process: authenticating a client may verify an Argon2id hash, which a flood must not "
        "be able to run on every core. The others wait their turn.",
    )
    oauth_queue_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Longest a token, revocation or introspection request waits for its turn "
        "before 503 `temporarily_unavailable`.",
    )
    legal_timezone: str = Field(
        default="Europe/Paris", description="Time zone in which habilitation dates are read."
    )
    audit_write_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Longest a request waits for its audit record's commit before answering 503.",
    )
    audit_write_batch_size: int = Field(
        default=500, ge=1, le=5000, description="Most audit records committed in one transaction."
    )
    audit_seal_interval_seconds: float = Field(
        default=0.5, gt=0, description="Pause between two runs of the audit trail's sealer."
    )
    telemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry (traces, metrics, logs) to the globally "
        "configured providers. Off, no request pays for looking them up.",
    )
    audit_seal_in_process: bool = Field(
        default=True,
        description="Seal in a thread of the app's process. `gateway serve` turns it off and "
        "runs `gateway audit seal --follow` as a process of its own beside its workers.",
    )
    freeze_heap_after_startup: bool = Field(
        default=False,
        description="Once the app has started, move every object it holds out of the garbage "
        "collector's reach (`gc.freeze`), so that a full collection walks only what requests "
        "made since: without it one walks ~190,000 objects and stalls every request in flight "
        "for ~100 ms. `gateway serve` turns it on; apps made and dropped in one process (tests) "
        "leave it off, since a frozen object that later becomes cyclic garbage is never freed.",
    )
    sunset_dates: dict[str, dt.date] = Field(
        default_factory=dict,
        description=(
            "Sunset date of deprecated connector versions, overriding their manifest, as JSON: "
            '{"turnover.v1": "2027-03-31"}. After it the version answers 410.'
        ),
    )
    audit_retention_days: int = Field(
        default=365,
        ge=1,
        description="Audit records older than this are deleted by `gateway audit purge`.",
    )
    # Ops console (gateway/console).
    console_session_timeout_minutes: int = Field(
        default=30,
        ge=1,
        le=720,
        description="A staff session ends after this many minutes without a request.",
    )
    console_secure_cookies: bool | None = Field(
        default=None,
        description=(
            "Mark the console's cookies Secure (sent over https only); when unset, they are "
            "Secure exactly when GATEWAY_ISSUER is an https URL."
        ),
    )
    trusted_proxies: str | None = Field(
        default=None,
        pattern=r"^[0-9A-Fa-f.:/,* ]{1,1000}$",
        description=(
            "Addresses or networks of the load balancers in front of `gateway serve`, comma "
            "separated (`10.0.0.0/8,192.0.2.7`): only from them are X-Forwarded-For and "
            "X-Forwarded-Proto believed, so that the console's login throttle counts per real "
            "client address rather than per balancer. Unset: no forwarding header is believed."
        ),
    )
    dsfr_dir: Path | None = Field(
        default=None,
        description=(
            "The dist/ folder of the npm package @gouvfr/dsfr served under /console/static/dsfr; "
            "defaults to node_modules/@gouvfr/dsfr/dist in the repository."
        ),
    )
    # Connection pool of the server's async engine on PostgreSQL (SQLite has no pool to size).
    database_pool_size: int = Field(
        default=20,
        # The reader needs at least one beside those it leaves to others: fewer would leave a
        # request waiting for ever.
        ge=RESERVED_CONNECTIONS + 1,
        le=500,
        description=(
            f"Connections each server process keeps open to PostgreSQL (at least "
            f"{RESERVED_CONNECTIONS + 1}): the reads keep all but {RESERVED_CONNECTIONS}, left "
            "to the audit writer, the rate limiter and sessions."
        ),
    )
    database_max_overflow: int = Field(
        default=0,
        ge=0,
        le=500,
        description=(
            "Extra connections opened beyond the pool under bursts, and closed on their return. "
            "0 by default: under sustained load the overflow is opened and closed for a fraction "
            "of all requests (a PostgreSQL backend started each time), which costs more than "
            "waiting a moment for a pooled connection."
        ),
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
