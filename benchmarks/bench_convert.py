"""Benchmark: read the seven corpora and convert them all to SentT'.

Per corpus it times (1) reading and parsing every split from disk (cold: the parse cache is
cleared first), (2) encoding every sentence to SentT' in memory, and (3) ``hlcli.convert.convert``
writing JSONL files to a temporary folder (parsing is cached by then, so this is encode + write).
Target: the whole run under 15 s on 2 cores. Not a test; run it by hand:

    python -m benchmarks.bench_convert --data-dir ../shared/data --json bench_convert.json
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import write_json
from hlcli import sentt
from hlcli.convert import convert
from hlcli.data import cache, corpora, tasks


def bench(data_dir: Path | None) -> dict:
    cache.clear()
    rows = []
    start_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in corpora.CORPORA:
            start = time.perf_counter()
            splits = tasks.load_corpus(name, data_dir=data_dir)
            read_s = time.perf_counter() - start

            start = time.perf_counter()
            records = sum(len(sentt.encode_windows(example)) for examples in splits.values() for example in examples)
            encode_s = time.perf_counter() - start

            start = time.perf_counter()
            result = convert(name, to="sentt", output=f"{tmp}/{name}/", output_format="jsonl", data_dir=data_dir)
            write_s = time.perf_counter() - start

            assert result.total_records == records
            rows.append(
                {
                    "corpus": name,
                    "sentences": result.total_sentences,
                    "records": records,
                    "read_s": round(read_s, 3),
                    "encode_s": round(encode_s, 3),
                    "convert_to_files_s": round(write_s, 3),
                    "total_s": round(read_s + encode_s + write_s, 3),
                }
            )
    return {
        "benchmark": "convert",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "corpora": rows,
        "total_s": round(time.perf_counter() - start_all, 3),
        "target_s": 15.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="corpora folder (default: $HL_DATA_DIR)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    report = bench(args.data_dir)
    print(f"{'corpus':<12} {'sentences':>9} {'records':>8} {'read s':>7} {'encode s':>8} {'to files s':>10} {'total s':>8}")
    for row in report["corpora"]:
        print(
            f"{row['corpus']:<12} {row['sentences']:>9} {row['records']:>8} {row['read_s']:>7.2f} "
            f"{row['encode_s']:>8.2f} {row['convert_to_files_s']:>10.2f} {row['total_s']:>8.2f}"
        )
    print(f"total wall time: {report['total_s']:.2f} s (target <= {report['target_s']:.0f} s)")
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
