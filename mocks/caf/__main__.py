"""Play CAF against a gateway: ``python -m mocks.caf --client-id ID --key caf.jwk``."""

from __future__ import annotations

from functools import partial

from mocks.caf import PROFILE, scenario
from mocks.common import cli


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(PROFILE, "CAF reads the status feed and quarterly turnover.")
    parser.add_argument(
        "--siren",
        action="append",
        default=None,
        help="SIREN whose turnover to read (repeat it); default: a few from the feed",
    )
    parser.add_argument("--from", dest="from_month", type=cli.month, help="first month")
    parser.add_argument("--to", dest="to_month", type=cli.month, help="last month")
    args = parser.parse_args(argv)
    return cli.run(
        PROFILE,
        args,
        partial(
            scenario.run, sirens=args.siren, from_month=args.from_month, to_month=args.to_month
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main())
