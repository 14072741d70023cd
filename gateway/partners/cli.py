"""``gateway partners|clients|habilitations ...``: the registry, managed by operators.

Every verb takes ``--json`` and then prints exactly one JSON object on stdout, errors included
(``{"error": {"code": ..., "detail": ...}}``, exit status 1).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import typer
from rich.table import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.cli.context import console, database, settings
from gateway.database import utcnow
from gateway.errors import ConflictError, GatewayError
from gateway.partners import service
from gateway.partners.models import PartnerKind, Scope
from gateway.partners.schemas import (
    ClientView,
    CreatedClientView,
    HabilitationView,
    PartnerView,
)

partners_app = typer.Typer(help="Partner organisations.", no_args_is_help=True)
clients_app = typer.Typer(help="OAuth clients of the partners.", no_args_is_help=True)
habilitations_app = typer.Typer(
    help="Habilitations: partner x scope x purposes x legal basis x dates.", no_args_is_help=True
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
_DATE_FORMATS = ["%Y-%m-%d"]


def run(
    as_json: bool,
    action: Callable[[Session], dict[str, Any]],
    render: Callable[[dict[str, Any]], None],
) -> None:
    """Run ``action`` in one committed transaction, then print its result."""
    try:
        with database().sync_session() as session, session.begin():
            payload = action(session)
    except GatewayError as exc:
        fail(as_json, exc)
    except IntegrityError:
        fail(as_json, ConflictError("registry.conflict", "A concurrent change conflicts; retry."))
    if as_json:
        typer.echo(json.dumps(payload, default=str))
    else:
        render(payload)


def fail(as_json: bool, error: GatewayError) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": {"code": error.code, "detail": error.detail}}))
    else:
        console(stderr=True).print(f"[red]Error[/red] ({error.code}): {error.detail}")
    raise typer.Exit(1)


def _dump(model: Any) -> dict[str, Any]:
    return dict(model.model_dump(mode="json"))


def _end_of_day(day: dt.date) -> dt.datetime:
    """The instant a credential valid "until DATE" stops: midnight after DATE, legal time."""
    zone = ZoneInfo(settings().legal_timezone)
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)


# -- partners ------------------------------------------------------------------------------


@partners_app.command("add")
def partners_add(
    name: Annotated[str, typer.Option(help="Short unique name, e.g. CAF.")],
    siret: Annotated[str, typer.Option(help="SIRET of the organisation (14 digits).")],
    kind: Annotated[PartnerKind, typer.Option(help="Kind of organisation.")],
    as_json: JsonFlag = False,
) -> None:
    """Register a partner organisation."""

    def action(session: Session) -> dict[str, Any]:
        partner = service.add_partner(session, name=name, siret=siret, kind=kind.value)
        return _dump(PartnerView.of(partner))

    run(as_json, action, lambda p: console().print(f"Partner {p['name']} added (id {p['id']})."))


@partners_app.command("list")
def partners_list(as_json: JsonFlag = False) -> None:
    """List partner organisations."""

    def action(session: Session) -> dict[str, Any]:
        return {"partners": [_dump(PartnerView.of(p)) for p in service.list_partners(session)]}

    def render(payload: dict[str, Any]) -> None:
        table = Table("id", "name", "SIRET", "kind")
        for p in payload["partners"]:
            table.add_row(str(p["id"]), p["name"], p["siret"], p["kind"])
        console().print(table)

    run(as_json, action, render)


# -- clients -------------------------------------------------------------------------------


@clients_app.command("create")
def clients_create(
    partner: Annotated[str, typer.Option(help="Name of the partner.")],
    jwks: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            readable=True,
            help="The client's public JWK set (private_key_jwt, preferred).",
        ),
    ] = None,
    secret: Annotated[
        bool, typer.Option("--secret", help="Issue a client secret (client_secret_basic).")
    ] = False,
    expires: Annotated[
        dt.datetime | None,
        typer.Option(formats=_DATE_FORMATS, help="Last day the credential is valid."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register an OAuth client; a secret is printed once and never again."""
    settings_ = settings()
    document = jwks.read_text(encoding="utf-8") if jwks is not None else None

    def action(session: Session) -> dict[str, Any]:
        created = service.create_client(
            session,
            settings_,
            partner_name=partner,
            jwks=document,
            secret=secret,
            expires_at=_end_of_day(expires.date()) if expires else None,
        )
        return _dump(
            CreatedClientView(
                client_id=created.client.client_id,
                partner=created.client.partner.name,
                auth_method=created.client.auth_method,
                credential_expires_at=created.client.credential_expires_at,
                client_secret=created.secret,
            )
        )

    def render(payload: dict[str, Any]) -> None:
        out = console()
        out.print(f"client_id: {payload['client_id']}")
        out.print(f"credential expires: {payload['credential_expires_at']}")
        if payload.get("client_secret"):
            out.print(f"client_secret: {payload['client_secret']}")
            out.print("[yellow]The secret is shown this once: store it now.[/yellow]")

    run(as_json, action, render)


@clients_app.command("disable")
def clients_disable(
    client_id: Annotated[str, typer.Argument(help="The client to disable.")],
    as_json: JsonFlag = False,
) -> None:
    """Disable a client: no new token, and its current tokens stop working."""
    settings_ = settings()

    def action(session: Session) -> dict[str, Any]:
        now = utcnow()
        client = service.disable_client(session, client_id, now)
        expires_soon = service.credential_expires_soon(client.credential_expires_at, settings_, now)
        return _dump(ClientView.of(client, expires_soon=expires_soon, now=now))

    run(as_json, action, lambda c: console().print(f"Client {c['client_id']} disabled."))


@clients_app.command("list")
def clients_list(
    partner: Annotated[str | None, typer.Option(help="Only this partner's clients.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List clients; flags credentials that expire within the warning window."""
    settings_ = settings()

    def action(session: Session) -> dict[str, Any]:
        now = utcnow()
        views = [
            ClientView.of(
                client,
                expires_soon=service.credential_expires_soon(
                    client.credential_expires_at, settings_, now
                ),
                now=now,
            )
            for client in service.list_clients(session, partner)
        ]
        return {
            "clients": [_dump(view) for view in views],
            "expiring_within_days": settings_.credential_expiry_warning_days,
            "expiring": [view.client_id for view in views if view.expires_soon],
        }

    def render(payload: dict[str, Any]) -> None:
        table = Table("client_id", "partner", "method", "credential expires", "state")
        for c in payload["clients"]:
            state = "disabled" if c["disabled_at"] else "active"
            if c["expired"]:
                state += ", [red]credential expired[/red]"
            elif c["expires_soon"]:
                state += ", [yellow]expires soon[/yellow]"
            table.add_row(
                c["client_id"], c["partner"], c["auth_method"], c["credential_expires_at"], state
            )
        console().print(table)

    run(as_json, action, render)


# -- habilitations -------------------------------------------------------------------------


@habilitations_app.command("grant")
def habilitations_grant(
    partner: Annotated[str, typer.Option(help="Name of the partner.")],
    scope: Annotated[Scope, typer.Option(help="The scope this habilitation opens.")],
    purpose: Annotated[
        list[str], typer.Option(help="A purpose code the partner may state (repeatable).")
    ],
    legal_basis: Annotated[str, typer.Option(help="The legal text the access rests on.")],
    consent_required: Annotated[
        bool,
        typer.Option("--consent-required", help="Each person's consent is the legal basis."),
    ] = False,
    valid_from: Annotated[
        dt.datetime | None,
        typer.Option("--from", formats=_DATE_FORMATS, help="First day (default: today)."),
    ] = None,
    valid_until: Annotated[
        dt.datetime | None,
        typer.Option("--until", formats=_DATE_FORMATS, help="Last day (default: open-ended)."),
    ] = None,
    rate_limit: Annotated[
        int | None,
        typer.Option(min=1, help="Requests per minute per client (default: the setting)."),
    ] = None,
    field: Annotated[
        list[str] | None,
        typer.Option(
            help="A releasable response field covered (repeatable; default: every field)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Grant a partner a scope for listed purposes, on a legal basis, between two dates."""
    settings_ = settings()

    def action(session: Session) -> dict[str, Any]:
        today = service.legal_today(settings_)
        habilitation = service.grant_habilitation(
            session,
            partner_name=partner,
            scope=scope.value,
            purposes=purpose,
            legal_basis=legal_basis,
            consent_required=consent_required,
            valid_from=valid_from.date() if valid_from else None,
            valid_until=valid_until.date() if valid_until else None,
            rate_limit_per_minute=rate_limit,
            released_fields=field,
            today=today,
        )
        return _dump(HabilitationView.of(habilitation, today=today))

    run(
        as_json,
        action,
        lambda h: console().print(
            f"Habilitation {h['id']} granted: {h['partner']} {h['scope']} "
            f"from {h['valid_from_date']} until {h['valid_until_date'] or 'further notice'}."
        ),
    )


@habilitations_app.command("revoke")
def habilitations_revoke(
    habilitation_id: Annotated[
        int | None, typer.Argument(help="The habilitation to revoke (see list).")
    ] = None,
    partner: Annotated[
        str | None, typer.Option(help="With --scope: revoke all of this partner's.")
    ] = None,
    scope: Annotated[Scope | None, typer.Option(help="With --partner.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke a habilitation now (by id, or all of a partner's for a scope)."""
    by_pair = partner is not None and scope is not None
    by_id = habilitation_id is not None and partner is None and scope is None
    if by_id == by_pair:
        fail(
            as_json,
            ConflictError(
                "habilitation.revoke_target", "Give a habilitation id, or --partner and --scope."
            ),
        )
    settings_ = settings()

    def action(session: Session) -> dict[str, Any]:
        today = service.legal_today(settings_)
        if partner is not None and scope is not None:
            revoked = list(
                service.revoke_habilitations_of(session, partner_name=partner, scope=scope.value)
            )
        else:
            revoked = [service.revoke_habilitation(session, int(habilitation_id or 0))]
        return {"revoked": [_dump(HabilitationView.of(h, today=today)) for h in revoked]}

    run(
        as_json,
        action,
        lambda p: console().print(
            "Revoked habilitation(s): " + ", ".join(str(h["id"]) for h in p["revoked"])
        ),
    )


@habilitations_app.command("list")
def habilitations_list(
    partner: Annotated[str | None, typer.Option(help="Only this partner's.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List habilitations, with whether each is in force today."""
    settings_ = settings()

    def action(session: Session) -> dict[str, Any]:
        today = service.legal_today(settings_)
        return {
            "habilitations": [
                _dump(HabilitationView.of(h, today=today))
                for h in service.list_habilitations(session, partner)
            ]
        }

    def render(payload: dict[str, Any]) -> None:
        table = Table("id", "partner", "scope", "purposes", "legal basis", "consent", "dates", "")
        for h in payload["habilitations"]:
            table.add_row(
                str(h["id"]),
                h["partner"],
                h["scope"],
                " ".join(h["purposes"]),
                h["legal_basis"],
                "yes" if h["consent_required"] else "no",
                f"{h['valid_from_date']} .. {h['valid_until_date'] or ''}",
                "in force" if h["in_force"] else "[dim]not in force[/dim]",
            )
        console().print(table)

    run(as_json, action, render)
