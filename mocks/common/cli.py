"""What the four partners' command lines share: options, connection, exit status."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import httpx
from rich.console import Console

from mocks.common.auth import TokenError
from mocks.common.client import GatewayClient
from mocks.common.profile import PartnerProfile
from mocks.common.report import ScenarioReport, print_report

EXIT_FAILED = 1
EXIT_UNREACHABLE = 2


def parser(profile: PartnerProfile, description: str) -> argparse.ArgumentParser:
    prog = f"python -m mocks.{profile.kind.replace('-', '_')}"
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--gateway", default="http://127.0.0.1:8000", help="gateway base URL")
    parser.add_argument("--client-id", required=True, help="OAuth client id at the gateway")
    parser.add_argument(
        "--key", type=Path, required=True, help="private JWK (JSON) of the client's key"
    )
    parser.add_argument("--purpose", default=profile.purpose, help="purpose code stated")
    parser.add_argument(
        "--recipient", default=profile.recipient, help="SIRET of the requesting unit"
    )
    return parser


def month(value: str) -> str:
    """An argparse type: ``YYYY-MM``."""
    try:
        dt.date.fromisoformat(value + "-01")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a month (YYYY-MM)") from None
    return value


def run(
    profile: PartnerProfile,
    args: argparse.Namespace,
    scenario: Callable[[GatewayClient], ScenarioReport],
    console: Console | None = None,
) -> int:
    """Connect as the partner, play the scenario, print the account; the exit status."""
    out = console or Console()
    try:
        with GatewayClient.connect(
            args.gateway,
            client_id=args.client_id,
            key_path=args.key,
            scopes=profile.scopes,
            purpose=args.purpose,
            recipient=args.recipient,
            user_agent=profile.user_agent,
        ) as client:
            report = scenario(client)
    except TokenError as exc:
        out.print(f"[red]{profile.name}: the gateway issued no token:[/red] {exc}")
        return EXIT_FAILED
    except httpx.HTTPError as exc:
        out.print(f"[red]{profile.name}: cannot reach {args.gateway}:[/red] {exc}")
        return EXIT_UNREACHABLE
    except (OSError, ValueError) as exc:
        out.print(f"[red]{profile.name}: cannot use the key {args.key}:[/red] {exc}")
        return EXIT_FAILED
    print_report(report, out)
    return 0 if report.succeeded else EXIT_FAILED
