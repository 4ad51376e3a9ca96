"""Speed and memory benchmarks of hlcli (not tests: each prints figures from one run).

Run from the repository root as ``python -m benchmarks.NAME --help``; ``benchmarks/README.md``
lists them and ``docs/PERFORMANCE.md`` the results. ``_common`` holds what they share: random
T5 backbones of named shapes, round-robin timing, machine facts and the JSON output.
"""
