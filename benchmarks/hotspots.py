"""Reads py-spy's collapsed stacks (``--format raw``) and lists where the time goes.

    python -m benchmarks.hotspots PROFILE.txt [--top 25] [--match gateway/]

Inclusive share: the fraction of samples with the function anywhere on the stack; self share:
with the function on top. ``--match`` keeps functions whose location contains the text (e.g.
``gateway/`` or ``connectors/``), to find the slowest places of our own code.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path


def read_stacks(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        frames, _, samples = line.rpartition(" ")
        if frames and samples.isdigit():
            stacks.append((frames.split(";"), int(samples)))
    return stacks


def shares(stacks: list[tuple[list[str], int]]) -> tuple[Counter[str], Counter[str], int]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for frames, samples in stacks:
        total += samples
        # Line numbers differ along one function: count each function once per stack.
        names = {_function(frame) for frame in frames}
        for name in names:
            inclusive[name] += samples
        if frames:
            own[_function(frames[-1])] += samples
    return inclusive, own, total


def _function(frame: str) -> str:
    # "name (path/file.py:123)" -> "name (path/file.py)"
    head, _, location = frame.partition(" (")
    return f"{head} ({location.rsplit(':', 1)[0]})" if location else head


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="", help="only functions whose location has this")
    args = parser.parse_args(argv)
    inclusive, own, total = shares(read_stacks(args.profile))
    print(f"{total} samples")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title}:")
        shown = 0
        for name, samples in counter.most_common():
            if args.match not in name:
                continue
            print(f"{100 * samples / total:6.1f} %  {name}")
            shown += 1
            if shown >= args.top:
                break


if __name__ == "__main__":
    main()
