"""What the consumer contract tests share: names, matchers, and where the pacts are kept.

A consumer test records its expectations into a pact file in a temporary folder, then
compares it with the one committed in ``contracts/pacts/``: the provider verification replays
the committed files, so they must be what the consumers' tests say. To record a changed
expectation, run ``CONTRACTS_UPDATE=1 pytest tests/contracts`` and commit the pact files.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from pact import Pact, match
from pact.match.matcher import AbstractMatcher

# The verifier's usage statistics would go to the network: never from here.
os.environ["PACT_DO_NOT_TRACK"] = "true"

PROVIDER = "urssaf-gateway"
PACT_DIR = Path(__file__).resolve().parents[2] / "contracts" / "pacts"
UPDATE = os.environ.get("CONTRACTS_UPDATE") == "1"
# The consumer tests never hold a real token; the verifier sends a real one instead.
TEST_TOKEN = "consumer-test-token"

SIREN = r"^[0-9]{9}$"
DATE = "%Y-%m-%d"
DATETIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
DECIMAL = r"^-?\d+(\.\d+)?$"
URL = r"^https?://.+"
JWS = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def new_pact(consumer: str) -> Pact:
    return Pact(consumer, PROVIDER).with_specification("V4")


def siren(example: str) -> AbstractMatcher[str]:
    return match.regex(example, regex=SIREN)


def date(example: str) -> AbstractMatcher[str]:
    return match.date(example, DATE)


def datetime(example: str) -> AbstractMatcher[str]:
    return match.regex(example, regex=DATETIME)


def decimal(example: str) -> AbstractMatcher[str]:
    return match.regex(example, regex=DECIMAL)


def one_of(example: str, *values: str) -> AbstractMatcher[str]:
    return match.regex(example, regex="^(" + "|".join(values) + ")$")


def data_headers(purpose: str, recipient: str) -> dict[str, Any]:
    """The headers of every data request: a token, the purpose, the requesting unit."""
    return {
        "Authorization": match.regex(f"Bearer {TEST_TOKEN}", regex=r"^Bearer [\x21-\x7e]+$"),
        "Purpose": purpose,
        "Recipient": match.regex(recipient, regex=r"^[0-9]{14}$"),
    }


def problem(code: str, status: int, title: str) -> dict[str, Any]:
    """A problem document as partners read it: the status and the stable code."""
    return {"status": status, "code": code, "title": match.str(title)}


def expect_headers(interaction: Any, headers: dict[str, Any]) -> None:
    for name, value in headers.items():
        interaction.with_header(name, value)


def discovery(pact: Pact, consumer: str) -> None:
    """Every partner finds the token endpoint in the authorisation server's metadata."""
    (
        pact.upon_receiving(f"{consumer} reads the authorisation server metadata")
        .with_request("GET", "/.well-known/oauth-authorization-server")
        .will_respond_with(200)
        .with_body(
            {
                "issuer": match.regex("http://127.0.0.1:8000", regex=URL),
                "token_endpoint": match.regex("http://127.0.0.1:8000/oauth/token", regex=URL),
                "jwks_uri": match.regex("http://127.0.0.1:8000/.well-known/jwks.json", regex=URL),
            },
            content_type="application/json",
        )
    )


def _comparable(document: dict[str, Any]) -> dict[str, Any]:
    # The metadata names the library's versions: not part of what the consumer expects.
    return {
        "consumer": document["consumer"],
        "provider": document["provider"],
        "interactions": sorted(document["interactions"], key=lambda i: i["description"]),
    }


def publish(pact: Pact, recorded_dir: Path) -> None:
    """Write the pact, record it in contracts/pacts when asked, and check the committed one."""
    pact.write_file(recorded_dir, overwrite=True)
    name = f"{pact.consumer}-{pact.provider}.json"
    recorded = recorded_dir / name
    committed = PACT_DIR / name
    if UPDATE:
        PACT_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(recorded, committed)
    assert committed.exists(), f"{committed} is missing: run CONTRACTS_UPDATE=1 pytest {__file__}"
    fresh = _comparable(json.loads(recorded.read_text(encoding="utf-8")))
    kept = _comparable(json.loads(committed.read_text(encoding="utf-8")))
    assert fresh == kept, (
        f"{committed.name} differs from what the consumer's tests expect: "
        "run CONTRACTS_UPDATE=1 pytest tests/contracts and commit contracts/pacts"
    )
