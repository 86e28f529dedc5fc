"""Summarise a py-spy `--format raw` (collapsed stacks) profile: inclusive and self time.

    py-spy record --pid PID --duration 10 --format raw --output prof.raw
    python tests/benchmarks/profile_summary.py prof.raw [--top 40] [--match santamon]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", default="", help="only frames containing this text")
    parser.add_argument("--lines", action="store_true", help="keep line numbers (per line)")
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        if not args.lines:
            frames = [_LINE.sub(")", frame) for frame in frames]
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
    print(f"{total} samples")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title}:")
        shown = 0
        for frame, samples in counter.most_common():
            if args.match and args.match not in frame:
                continue
            print(f"{100 * samples / total:6.1f}%  {frame}")
            shown += 1
            if shown >= args.top:
                break


if __name__ == "__main__":
    main()
