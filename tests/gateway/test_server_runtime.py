"""How `gateway serve` runs its workers: the sealer beside them, their startup heap frozen."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from gateway.app import create_app
from gateway.settings import Settings

# The module, not the Typer app that `gateway.cli` exports under the same name.
cli_app = importlib.import_module("gateway.cli.app")


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


async def test_a_served_app_freezes_what_it_holds_once_started(
    settings: Settings, unfrozen: None
) -> None:
    app = create_app(settings.model_copy(update={"freeze_heap_after_startup": True}))
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        frozen = gc.get_freeze_count()
        # The app itself and everything made to start it are frozen, not just a few objects.
        assert frozen > 10_000
        assert all(obj is not app.state for obj in gc.get_objects())


async def test_apps_made_and_dropped_in_one_process_do_not_freeze(
    settings: Settings, unfrozen: None
) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() == 0


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``run_server`` with nothing started: what it hands uvicorn, and the settings then."""
    seen: dict[str, Any] = {}

    @contextmanager
    def no_sealer() -> Iterator[None]:
        yield

    def fake_run(*_args: object, **kwargs: object) -> None:
        seen["settings"] = Settings()
        seen.update(kwargs)

    monkeypatch.setattr(cli_app, "ensure_schema_current", lambda _db: None)
    monkeypatch.setattr(cli_app, "sealer_process", no_sealer)
    monkeypatch.setattr(cli_app.uvicorn, "run", fake_run)
    monkeypatch.setattr(cli_app, "database", lambda: None)
    return seen


def test_serve_turns_the_freeze_on_and_in_process_sealing_off(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GATEWAY_FREEZE_HEAP_AFTER_STARTUP", "GATEWAY_AUDIT_SEAL_IN_PROCESS"):
        monkeypatch.delenv(name, raising=False)
    cli_app.run_server("127.0.0.1", 0, 1)
    assert served["factory"] is True
    assert served["settings"].freeze_heap_after_startup is True
    assert served["settings"].audit_seal_in_process is False


@pytest.mark.parametrize(
    ("configured", "believed"),
    [(None, (False, None)), ("10.0.0.0/8,192.0.2.7", (True, "10.0.0.0/8,192.0.2.7"))],
)
def test_serve_believes_forwarding_headers_from_the_configured_balancers_only(
    served: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    configured: str | None,
    believed: tuple[bool, str | None],
) -> None:
    if configured is None:
        monkeypatch.delenv("GATEWAY_TRUSTED_PROXIES", raising=False)
    else:
        monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", configured)
    cli_app.run_server("127.0.0.1", 0, 1)
    assert (served["proxy_headers"], served["forwarded_allow_ips"]) == believed
