"""Settings, each overridable by a ``GATEWAY_*`` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=None, extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/gateway.db",
        description="Plain URL: sqlite:///path/to/file.db or postgresql://user@host:port/db.",
    )
    log_format: str = Field(default="auto", pattern="^(auto|json|console)$")
    log_level: str = "info"
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


@lru_cache
def get_settings() -> Settings:
    return Settings()
