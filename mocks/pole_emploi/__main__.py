"""Play Pôle emploi against a gateway: ``python -m mocks.pole_emploi --client-id ID --key K``."""

from __future__ import annotations

from functools import partial

from mocks.common import cli
from mocks.pole_emploi import PROFILE, scenario


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(
        PROFILE, "Pôle emploi reads monthly turnover and ACRE proofs, and records consents."
    )
    parser.add_argument("--nir", action="append", default=[], help="job seeker's NIR (repeat it)")
    parser.add_argument(
        "--siren", action="append", default=[], help="business creator's SIREN (repeat it)"
    )
    parser.add_argument(
        "--consenting-nir", help="NIR of a person whose consent to record, use and withdraw"
    )
    parser.add_argument("--from", dest="from_month", type=cli.month, help="first month")
    parser.add_argument("--to", dest="to_month", type=cli.month, help="last month")
    args = parser.parse_args(argv)
    if not (args.nir or args.siren or args.consenting_nir):
        parser.error("name someone: --nir, --siren or --consenting-nir")
    return cli.run(
        PROFILE,
        args,
        partial(
            scenario.run,
            job_seekers=args.nir,
            creators=args.siren,
            consenting=args.consenting_nir,
            from_month=args.from_month,
            to_month=args.to_month,
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main())
