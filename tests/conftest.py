"""Fixtures shared by the whole suite: a freshly migrated database per test, the app, a client.

The database is SQLite unless ``GATEWAY_TEST_DATABASE_URL`` names a PostgreSQL server
(``postgresql://user@host:port/postgres``): CI runs the suite once each way. Every test gets its
own database copied from one migrated template, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gateway.app import create_app
from gateway.cli import context as cli_context
from gateway.database import Database, driver_urls
from gateway.identifiers import NIR_SHAPE
from gateway.logging import configure_logging
from gateway.migrate import upgrade
from gateway.settings import Settings, get_settings

SERVER_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL", "")
BACKEND = "postgresql" if SERVER_URL else "sqlite"
OUTPUT = Path(__file__).resolve().parent.parent / "test-output"
SUITE_LOG = OUTPUT / f"suite-{BACKEND}.log"


def pytest_configure(config: pytest.Config) -> None:
    # Everything the suite logs, from every app and command it runs, lands in one file that
    # the end of the session scans for NIRs in clear (invariant 3).
    OUTPUT.mkdir(exist_ok=True)
    SUITE_LOG.write_text("")
    os.environ["GATEWAY_LOG_FILE"] = str(SUITE_LOG)
    configure_logging("json", "info", SUITE_LOG)


def nir_leaks(path: Path) -> list[int]:
    """Numbers of the lines of ``path`` holding anything shaped like a NIR."""
    return [
        number
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if NIR_SHAPE.search(line)
    ]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not SUITE_LOG.exists():
        return
    leaks = nir_leaks(SUITE_LOG)
    if leaks:
        print(f"\ninvariant 3 broken: NIR-shaped text in {SUITE_LOG}, lines {leaks[:20]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_report_header() -> str:
    return f"database backend: {BACKEND}" + (
        f" ({make_url(SERVER_URL).host})" if SERVER_URL else ""
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if BACKEND == "postgresql":
        return
    skip = pytest.mark.skip(reason="PostgreSQL-only behaviour; CI runs the suite on PostgreSQL")
    for item in items:
        if "postgresql_only" in item.keywords:
            item.add_marker(skip)


def _admin_engine():  # type: ignore[no-untyped-def]
    sync_url, _ = driver_urls(SERVER_URL)
    return create_engine(sync_url, isolation_level="AUTOCOMMIT")


def _with_database(name: str) -> str:
    return make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated once per run, the model every test's database is copied from."""
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        # Fold the write-ahead log into the main file so a plain copy is complete.
        engine = create_engine(f"sqlite:///{path}")
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
        engine.dispose()
        yield url
        return
    name = f"gw_template_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = _with_database(name)
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(template_database: str, tmp_path: Path) -> Iterator[str]:
    if BACKEND == "sqlite":
        source = make_url(template_database).database
        assert source is not None
        target = tmp_path / "gateway.db"
        shutil.copyfile(source, target)
        yield f"sqlite:///{target}"
        return
    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    template_name = make_url(template_database).database
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    yield _with_database(name)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path / "var", log_format="json")


@pytest.fixture
def cli_environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What a ``gateway`` command run in the test sees: the test's database and files."""
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("GATEWAY_LOG_LEVEL", "warning")
    get_settings.cache_clear()
    cli_context.database.cache_clear()
    yield
    cli_context.database().sync_engine.dispose()
    get_settings.cache_clear()
    cli_context.database.cache_clear()


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    yield database
    database.sync_engine.dispose()


@pytest.fixture
async def async_db(db: Database) -> AsyncIterator[Database]:
    """``db`` for async use: ``db`` only disposes its sync engine, and pooled async connections
    must be closed on the loop that opened them, the test's own, before it ends."""
    yield db
    await db.dispose()


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    """A sync session for factories and assertions; tests commit what they set up."""
    with db.sync_session() as sync_session:
        yield sync_session


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
