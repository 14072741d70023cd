"""Play the training fund: ``python -m mocks.training_fund --client-id ID --key K --siren S``."""

from __future__ import annotations

from functools import partial

from mocks.common import cli
from mocks.common.dates import today_in_france
from mocks.training_fund import PROFILE, scenario


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(PROFILE, "A training fund batches CFP attestations and verifies them.")
    parser.add_argument(
        "--siren", action="append", required=True, help="an applicant's SIREN (repeat it)"
    )
    parser.add_argument(
        "--year",
        type=int,
        default=today_in_france().year - 1,
        help="year of the contribution (default: last year)",
    )
    args = parser.parse_args(argv)
    return cli.run(PROFILE, args, partial(scenario.run, sirens=args.siren, year=args.year))


if __name__ == "__main__":
    raise SystemExit(main())
