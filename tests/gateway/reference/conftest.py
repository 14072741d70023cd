"""Fixtures for the reference store tests: the CLI on the test database, a second database."""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from reference_files import RunCli
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from gateway.cli.app import app
from gateway.cli.context import database
from gateway.database import driver_urls, is_sqlite
from gateway.settings import Settings, get_settings


@pytest.fixture
def run_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunCli]:
    """``run_cli("ingest", "turnover", path)``: the real command line, on this test's database.

    The CLI reads its settings from the environment and caches them and its database handle
    (``functools.lru_cache``); both caches are cleared so that it sees this test's values.
    """
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("GATEWAY_LOG_FORMAT", "json")
    monkeypatch.setenv("GATEWAY_LOG_LEVEL", "warning")
    get_settings.cache_clear()
    database.cache_clear()
    # The CLI points the root log handler at the runner's stderr, which closes with each run.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    runner = CliRunner()

    def run(*args: object) -> Result:
        return runner.invoke(app, [str(arg) for arg in args], catch_exceptions=False)

    yield run
    if database.cache_info().currsize:
        database().sync_engine.dispose()
    database.cache_clear()
    get_settings.cache_clear()
    root.handlers, root.level = handlers, level


@pytest.fixture
def make_database(template_database: str, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """``make_database()``: the URL of one more freshly migrated database, for comparisons."""
    created: list[str] = []
    template = make_url(template_database)
    # Connected to the server's own database: PostgreSQL copies no template that has sessions.
    server = template.set(database="postgres").render_as_string(hide_password=False)
    admin = (
        None
        if is_sqlite(template_database)
        else create_engine(driver_urls(server)[0], isolation_level="AUTOCOMMIT")
    )

    def make() -> str:
        if admin is None:
            assert template.database is not None
            target = tmp_path / f"other-{len(created)}.db"
            shutil.copyfile(template.database, target)
            created.append(str(target))
            return f"sqlite:///{target}"
        name = f"gw_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"'))
        created.append(name)
        return template.set(database=name).render_as_string(hide_password=False)

    yield make
    if admin is not None:
        with admin.connect() as connection:
            for name in created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
