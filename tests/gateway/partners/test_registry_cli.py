"""The registry commands, as operators run them: each verb, with --json, prints one object."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey
from sqlalchemy import select
from typer.testing import CliRunner

from gateway.cli.app import app
from gateway.cli.context import database
from gateway.database import Database, utcnow
from gateway.identifiers import siren_with_checksum, siret_with_checksum
from gateway.partners.models import OAuthClient
from gateway.settings import Settings, get_settings

Run = Callable[..., dict[str, Any]]
SIRET = siret_with_checksum(siren_with_checksum("53498776") + "0001")


@pytest.fixture
def gateway(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("GATEWAY_LOG_FORMAT", "json")
    get_settings.cache_clear()
    database.cache_clear()
    runner = CliRunner()

    def run(*args: str, status: int = 0) -> dict[str, Any]:
        result = runner.invoke(app, [*args, "--json"])
        assert result.exit_code == status, result.output
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 1, result.stdout  # exactly one JSON object
        return dict(json.loads(lines[0]))

    yield run
    database().sync_engine.dispose()
    database.cache_clear()
    get_settings.cache_clear()


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    path = tmp_path / "caf-jwks.json"
    key = ECKey.generate_key("P-256", private=True)
    path.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    return path


def test_partners_add_and_list(gateway: Run) -> None:
    added = gateway("partners", "add", "--name", "CAF", "--siret", SIRET, "--kind", "caf")
    assert added["name"] == "CAF"
    assert added["siret"] == SIRET
    assert gateway("partners", "list")["partners"][0]["kind"] == "caf"


def test_errors_are_one_json_object_too(gateway: Run) -> None:
    refused = gateway(
        "partners", "add", "--name", "CAF", "--siret", "12345678901234", "--kind", "caf", status=1
    )
    assert refused["error"]["code"] == "partner.siret_invalid"
    missing = gateway("clients", "create", "--partner", "Nobody", "--secret", status=1)
    assert missing["error"]["code"] == "partner.not_found"


def test_clients_create_with_jwks_or_secret_then_disable(
    gateway: Run, jwks_file: Path, db: Database
) -> None:
    gateway("partners", "add", "--name", "CAF", "--siret", SIRET, "--kind", "caf")
    with_key = gateway("clients", "create", "--partner", "CAF", "--jwks", str(jwks_file))
    with_secret = gateway("clients", "create", "--partner", "CAF", "--secret")

    assert with_key["auth_method"] == "private_key_jwt"
    assert with_key["client_secret"] is None
    assert with_secret["auth_method"] == "client_secret_basic"
    assert len(with_secret["client_secret"]) >= 40
    listed = gateway("clients", "list")
    assert with_secret["client_secret"] not in json.dumps(listed)  # shown once only

    disabled = gateway("clients", "disable", with_key["client_id"])
    assert disabled["disabled_at"] is not None
    with db.sync_session() as session:
        row = session.scalar(
            select(OAuthClient).where(OAuthClient.client_id == with_key["client_id"])
        )
        assert row is not None
        assert row.disabled_at is not None


def test_clients_list_shows_credentials_expiring_within_30_days(
    gateway: Run, jwks_file: Path, db: Database
) -> None:
    gateway("partners", "add", "--name", "CAF", "--siret", SIRET, "--kind", "caf")
    soon = (utcnow() + dt.timedelta(days=10)).date().isoformat()
    expiring = gateway(
        "clients", "create", "--partner", "CAF", "--jwks", str(jwks_file), "--expires", soon
    )
    lasting = gateway("clients", "create", "--partner", "CAF", "--secret")

    listed = gateway("clients", "list")

    assert listed["expiring_within_days"] == 30
    assert listed["expiring"] == [expiring["client_id"]]
    by_id = {c["client_id"]: c for c in listed["clients"]}
    assert by_id[expiring["client_id"]]["expires_soon"] is True
    assert by_id[lasting["client_id"]]["expires_soon"] is False


def test_habilitations_grant_list_and_revoke(gateway: Run) -> None:
    gateway("partners", "add", "--name", "CAF", "--siret", SIRET, "--kind", "caf")
    granted = gateway(
        "habilitations", "grant",
        "--partner", "CAF",
        "--scope", "turnover:read",
        "--purpose", "RSA_INSTRUCTION",
        "--purpose", "PRIME_ACTIVITE",
        "--legal-basis", "CSS art. L. 114-8",
        "--consent-required",
        "--from", "2026-01-01",
        "--until", "2099-12-31",
        "--rate-limit", "120",
    )  # fmt: skip
    assert granted["purposes"] == ["RSA_INSTRUCTION", "PRIME_ACTIVITE"]
    assert granted["consent_required"] is True
    assert granted["valid_until_date"] == "2099-12-31"
    assert granted["rate_limit_per_minute"] == 120
    assert gateway("habilitations", "list", "--partner", "CAF")["habilitations"][0]["in_force"]

    revoked = gateway("habilitations", "revoke", str(granted["id"]))
    assert revoked["revoked"][0]["revoked_at"] is not None
    assert revoked["revoked"][0]["in_force"] is False


def test_habilitations_revoke_by_partner_and_scope(gateway: Run) -> None:
    gateway("partners", "add", "--name", "CAF", "--siret", SIRET, "--kind", "caf")
    for purpose in ("A", "B"):
        gateway(
            "habilitations", "grant", "--partner", "CAF", "--scope", "status:read",
            "--purpose", purpose, "--legal-basis", "CSS",
        )  # fmt: skip
    revoked = gateway("habilitations", "revoke", "--partner", "CAF", "--scope", "status:read")
    assert len(revoked["revoked"]) == 2
    ambiguous = gateway("habilitations", "revoke", "1", "--partner", "CAF", status=1)
    assert ambiguous["error"]["code"] == "habilitation.revoke_target"


def test_keys_rotate_makes_a_new_current_key_per_use(gateway: Run) -> None:
    first = gateway("keys", "rotate")
    second = gateway("keys", "rotate", "--use", "token")
    audit = gateway("keys", "rotate", "--use", "audit")

    assert first["use"] == second["use"] == "token"
    assert audit["use"] == "audit"
    assert len({first["kid"], second["kid"], audit["kid"]}) == 3
    listed = {key["kid"]: key for key in gateway("keys", "list")["keys"]}
    assert listed[first["kid"]]["retired_at"] is not None
    assert listed[second["kid"]]["retired_at"] is None
    # The first token key signed nothing, so it is no longer published; audit keys always are.
    assert listed[audit["kid"]]["published"] is True
    assert listed[first["kid"]]["published"] is False
