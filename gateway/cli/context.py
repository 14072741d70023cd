"""What every command shares: the settings, one database handle and the consoles."""

from __future__ import annotations

from functools import lru_cache

from rich.console import Console

from gateway.database import Database
from gateway.settings import Settings, get_settings


def settings() -> Settings:
    return get_settings()


@lru_cache
def database() -> Database:
    return Database(settings().database_url)


@lru_cache
def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr)
