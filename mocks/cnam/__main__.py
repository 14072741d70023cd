"""Play CNAM against a gateway: ``python -m mocks.cnam --client-id ID --key cnam.jwk``."""

from __future__ import annotations

from functools import partial

from mocks.cnam import PROFILE, scenario
from mocks.common import cli


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(PROFILE, "CNAM reads the status feed and ACRE decisions.")
    parser.add_argument(
        "--siren",
        action="append",
        default=[],
        help="SIREN whose ACRE decision to read (repeat it)",
    )
    parser.add_argument(
        "--from-feed",
        type=int,
        default=scenario.DEFAULT_PEOPLE,
        help="also read the decisions of this many latest affiliations in the feed",
    )
    args = parser.parse_args(argv)
    return cli.run(
        PROFILE, args, partial(scenario.run, sirens=args.siren, from_feed=args.from_feed)
    )


if __name__ == "__main__":
    raise SystemExit(main())
