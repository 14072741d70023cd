"""``gateway demo``: the whole exchange on one machine, told as it happens.

On the embedded default (an SQLite file under ``var/``) it migrates the database, seeds
synthetic people when the store is empty, registers the four partners, starts the mock Pôle
emploi API and the gateway on loopback ports, then plays each partner's scenario over HTTP
exactly as :mod:`mocks` does from the command line, and prints what each asked and received.
It keeps serving afterwards, so a person can look at the console and the audit trail the
scenarios left, until Ctrl-C (or SIGTERM) stops both servers cleanly.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType

import httpx
from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select

from gateway.app import create_app
from gateway.database import Database
from gateway.demo.cast import DemoCast, cast
from gateway.demo.partners import DemoCredentials, key_directory, set_up_partners
from gateway.demo.servers import BackgroundServer, ServerStartError, bind
from gateway.demo.staff import DemoLogin, ensure_demo_staff
from gateway.migrate import upgrade
from gateway.reference.models import Account
from gateway.reference.seed import seed_reference_data
from gateway.settings import Settings
from mocks import caf, cnam, pole_emploi, pole_emploi_api, training_fund
from mocks.caf import scenario as caf_scenario
from mocks.cnam import scenario as cnam_scenario
from mocks.common import GatewayClient, ScenarioReport, TokenError, render
from mocks.pole_emploi import scenario as pole_emploi_scenario
from mocks.training_fund import scenario as training_fund_scenario

DEMO_PERSONS = 2_000
DEMO_SEED = 2026
READY_MARK = "Ctrl-C stops the gateway and the mock Pôle emploi."

Scenario = Callable[[GatewayClient, DemoCast], ScenarioReport]

SCENARIOS: dict[str, Scenario] = {
    caf.PROFILE.kind: lambda client, people: caf_scenario.run(
        client,
        sirens=people.quarterly_sirens,
        from_month=people.caf_range[0],
        to_month=people.caf_range[1],
    ),
    pole_emploi.PROFILE.kind: lambda client, people: pole_emploi_scenario.run(
        client,
        job_seekers=people.monthly_nirs,
        creators=people.acre_sirens,
        consenting=people.consenting_nir,
        from_month=people.pole_emploi_range[0],
        to_month=people.pole_emploi_range[1],
    ),
    # Asked about the creator Pôle emploi knows as receiving ARE: granted, but CNAM is not
    # told the criterion.
    cnam.PROFILE.kind: lambda client, people: cnam_scenario.run(
        client, sirens=people.acre_sirens[:1], from_feed=2
    ),
    training_fund.PROFILE.kind: lambda client, people: training_fund_scenario.run(
        client, sirens=people.applicant_sirens, year=people.cfp_year
    ),
}


@dataclass(frozen=True, slots=True)
class Prepared:
    settings: Settings
    credentials: list[DemoCredentials]
    people: DemoCast
    seeded: str
    login: DemoLogin | None


def prepare(settings: Settings) -> Prepared:
    """Migrate, seed when empty, register the partners: everything before serving."""
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        with db.sync_session() as session:
            accounts = session.scalar(select(func.count()).select_from(Account)) or 0
        if accounts == 0:
            summary = seed_reference_data(db.sync_engine, persons=DEMO_PERSONS, seed=DEMO_SEED)
            seeded = (
                f"seeded {summary.accounts:,} synthetic people, "
                f"{summary.turnover_declarations:,} turnover declarations, "
                f"{summary.cfp_payments:,} CFP payments in {summary.seconds:.1f} s"
            )
        else:
            seeded = f"reference store already holds {accounts:,} people"
        with db.sync_session.begin() as session:
            credentials = set_up_partners(session, settings, key_directory(settings))
        login = ensure_demo_staff(db, key_directory(settings))
    finally:
        db.sync_engine.dispose()
    return Prepared(settings, credentials, cast(DEMO_SEED, DEMO_PERSONS), seeded, login)


def play(credentials: DemoCredentials, gateway_url: str, people: DemoCast) -> ScenarioReport:
    """One partner's scenario over HTTP; a failure to connect is a failed scenario."""
    profile = credentials.profile
    started = time.perf_counter()
    try:
        with GatewayClient.connect(
            gateway_url,
            client_id=credentials.client_id,
            key_path=credentials.key_path,
            scopes=profile.scopes,
            purpose=profile.purpose,
            recipient=profile.recipient,
            user_agent=profile.user_agent,
        ) as client:
            return SCENARIOS[profile.kind](client, people)
    except (TokenError, httpx.HTTPError) as exc:
        report = ScenarioReport(profile.name, profile.role)
        report.check("Obtain an access token and call the gateway", False, str(exc))
        report.seconds = time.perf_counter() - started
        return report


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM stops the demo the way Ctrl-C does."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _ignoring_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_demo(base: Settings, *, host: str, port: int, out: Console) -> int:
    """The demo from start to Ctrl-C; the exit status (1 when a scenario went wrong)."""
    clock = time.perf_counter()
    try:
        gateway_socket = bind(host, port)
        mock_socket = bind(host, 0)
    except ServerStartError as exc:
        out.print(f"[red]Cannot start the demo:[/red] {exc}")
        return 2
    gateway_port = gateway_socket.getsockname()[1]
    mock_port = mock_socket.getsockname()[1]
    gateway_url = f"http://{host}:{gateway_port}"
    settings = base.model_copy(
        update={"issuer": gateway_url, "pole_emploi_url": f"http://{host}:{mock_port}"}
    )
    out.print(Rule("Tell-us-once gateway · demo"))
    out.print(f"Database {settings.database_url}")
    prepared = prepare(settings)
    out.print(f"Reference store: {prepared.seeded}.")
    out.print(
        "Partners registered with their habilitations: "
        + ", ".join(c.profile.name for c in prepared.credentials)
        + f" (private keys in {key_directory(settings)}/)."
    )
    mock = BackgroundServer(
        pole_emploi_api.create_app(
            client_id=settings.pole_emploi_client_id,
            client_secret=settings.pole_emploi_client_secret.get_secret_value(),
        ),
        mock_socket,
        name="pole-emploi-mock",
    )
    gateway = BackgroundServer(create_app(settings), gateway_socket, name="gateway")
    failed = 0
    with _stop_on_sigterm(), contextlib.ExitStack() as servers:
        try:
            mock.start()
            servers.callback(mock.stop)
            gateway.start()
            servers.callback(gateway.stop)
        except ServerStartError as exc:
            out.print(f"[red]Cannot start the demo:[/red] {exc}")
            return 2
        try:
            failed = _tell(prepared, gateway_url, out, clock)
            _footer(prepared, gateway, mock, out)
            while gateway.running and mock.running:
                time.sleep(0.2)
            out.print("[red]A server stopped on its own.[/red]")
            return 1
        except KeyboardInterrupt:
            out.print("\nStopping: the audit writer commits what is queued, then seals it…")
        # A second Ctrl-C must not cut the audit writer's last commit short.
        with _ignoring_interrupts():
            servers.close()
    out.print("Stopped. Check the trail the partners left: [bold]gateway audit verify[/bold]")
    return 1 if failed else 0


def _tell(prepared: Prepared, gateway_url: str, out: Console, clock: float) -> int:
    """Play and print the four scenarios; how many did not go as expected."""
    out.print(Rule("What each partner asked, and what it received"))
    started = time.perf_counter()
    failed = 0
    for credentials in prepared.credentials:
        report = play(credentials, gateway_url, prepared.people)
        failed += not report.succeeded
        out.print(render(report))
    total = len(prepared.credentials)
    verdict = Text(
        f"{total - failed} of {total} scenarios went as expected",
        style="bold green" if not failed else "bold red",
    )
    verdict.append(
        f" in {time.perf_counter() - started:.1f} s"
        f" ({time.perf_counter() - clock:.1f} s since the demo started).",
        style="default",
    )
    out.print(verdict)
    return failed


def _footer(
    prepared: Prepared, gateway: BackgroundServer, mock: BackgroundServer, out: Console
) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("Gateway", f"{gateway.url}  (API documentation: {gateway.url}/docs)")
    console_url = f"{gateway.url}/console/"
    if prepared.login is not None:
        table.add_row(
            "Console",
            f"{console_url}  login [bold]{prepared.login.name}[/bold] "
            f"password [bold]{prepared.login.password}[/bold]",
        )
    else:
        table.add_row("Console", f"{console_url}  (a login: gateway staff add demo --role admin)")
    table.add_row("Mock Pôle emploi", mock.url)
    first = prepared.credentials[0]
    table.add_row(
        "Replay a partner",
        f"python -m mocks.{first.profile.kind.replace('-', '_')} --gateway {gateway.url} "
        f"--client-id {first.client_id} --key {first.key_path}",
    )
    out.print(Rule())
    out.print(table)
    out.print(READY_MARK)
