"""The four mock partners against the real gateway over HTTP, as the demo plays them.

If these fail, the demo's first screen shows red: a partner could not get a token, was
refused where it has a right, or received an answer lacking a field it relies on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_gateway import LiveGateway, live_gateway, seed
from rich.console import Console

from gateway.database import Database
from gateway.demo.cast import DemoCast, cast
from gateway.demo.run import play
from gateway.settings import Settings
from mocks.caf.__main__ import main as caf_main
from mocks.cnam.__main__ import main as cnam_main
from mocks.common import ScenarioReport
from mocks.pole_emploi.__main__ import main as pole_emploi_main
from mocks.training_fund.__main__ import main as training_fund_main


@pytest.fixture
def live(db: Database, settings: Settings) -> Iterator[LiveGateway]:
    seed(db)
    with live_gateway(settings) as gateway:
        yield gateway


@pytest.fixture
def people() -> DemoCast:
    return cast(2026, 200)


def _failures(report: ScenarioReport) -> list[str]:
    return [
        f"{step.asked}: {step.status} {step.outcome} ({step.received})"
        for step in report.steps
        if not step.as_expected
    ]


def test_every_partner_scenario_goes_as_expected(live: LiveGateway, people: DemoCast) -> None:
    reports = {
        kind: play(credentials, live.url, people) for kind, credentials in live.credentials.items()
    }

    assert {kind: _failures(report) for kind, report in reports.items()} == {
        "caf": [],
        "pole-emploi": [],
        "cnam": [],
        "training-fund": [],
    }
    caf = reports["caf"]
    assert caf.steps[0].received.startswith(("2", "1", "3")), "the feed carried no event"
    pole_emploi = reports["pole-emploi"]
    # The consent's life: refused, recorded, answered, withdrawn, refused again.
    assert [step.outcome for step in pole_emploi.steps[-5:]] == [
        "refused",
        "answered",
        "answered",
        "answered",
        "refused",
    ]
    # CNAM's habilitation releases the decision, not the criterion that was met.
    assert "criterion not released to CNAM" in reports["cnam"].steps[1].received
    fund = reports["training-fund"]
    assert "1 invalid" in fund.steps[1].received
    assert fund.steps[2].received.startswith("5 of 5 signatures valid")


def _cli_arguments(live: LiveGateway, kind: str) -> list[str]:
    credentials = live.credentials[kind]
    return [
        "--gateway",
        live.url,
        "--client-id",
        credentials.client_id,
        "--key",
        str(credentials.key_path),
    ]


def test_each_partner_runs_from_its_command_line(
    live: LiveGateway, people: DemoCast, capsys: pytest.CaptureFixture[str]
) -> None:
    assert caf_main([*_cli_arguments(live, "caf"), "--from", "2026-01", "--to", "2026-09"]) == 0
    assert cnam_main([*_cli_arguments(live, "cnam"), "--from-feed", "1"]) == 0
    assert (
        pole_emploi_main(
            [
                *_cli_arguments(live, "pole-emploi"),
                "--nir",
                people.monthly_nirs[0],
                "--siren",
                people.acre_sirens[0],
                "--consenting-nir",
                people.consenting_nir,
                "--from",
                "2026-04",
                "--to",
                "2026-09",
            ]
        )
        == 0
    )
    fund = [*_cli_arguments(live, "training-fund"), "--year", "2025"]
    for siren in people.applicant_sirens:
        fund += ["--siren", siren]
    assert training_fund_main(fund) == 0
    printed = capsys.readouterr().out
    assert printed.count("scenario succeeded") == 4
    # The partners' own screens show NIRs masked, never in clear.
    assert people.consenting_nir not in printed
    assert people.monthly_nirs[0] not in printed


def test_a_partner_with_the_wrong_key_gets_no_token(
    live: LiveGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from joserfc.jwk import ECKey

    stranger = tmp_path / "stranger.jwk"
    stranger.write_text(json.dumps(ECKey.generate_key("P-256", private=True).as_dict(private=True)))
    arguments = _cli_arguments(live, "cnam")
    arguments[arguments.index("--key") + 1] = str(stranger)

    assert cnam_main(arguments) == 1
    assert "invalid_client" in capsys.readouterr().out


def test_a_partner_says_so_when_the_gateway_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from joserfc.jwk import ECKey

    key = tmp_path / "key.jwk"
    key.write_text(json.dumps(ECKey.generate_key("P-256", private=True).as_dict(private=True)))
    # Port 9 (discard) is closed on loopback: the connection is refused at once.
    arguments = ["--gateway", "http://127.0.0.1:9", "--client-id", "x", "--key", str(key)]

    assert cnam_main(arguments) == 2
    assert "cannot reach" in capsys.readouterr().out


def test_the_account_fits_a_narrow_terminal(live: LiveGateway, people: DemoCast) -> None:
    report = play(live.credentials["training-fund"], live.url, people)
    console = Console(width=80, record=True, color_system=None)
    from mocks.common import print_report

    print_report(report, console)
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "FAFCEA" in text
