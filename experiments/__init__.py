"""Experiment drivers: scripts that run ``hl`` many times to answer a research question and table
the result (not benchmarks: they measure quality, not speed). Run from the repository root as
``python -m experiments.NAME``; each module's docstring gives the exact command of the committed study.
"""
