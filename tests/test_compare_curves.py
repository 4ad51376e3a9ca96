"""The convergence check behind ``hl compare --curves``: validation loss over the last fifth."""

from __future__ import annotations

import json

import pytest

from hlcli.compare.curves import curve_label, line_style, plot_curves, read_curve

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(tmp_path, name, losses, every=100):
    run = tmp_path / name
    run.mkdir()
    lines = [json.dumps({"step": 50, "loss": 3.0, "lr": 1e-4})]
    lines += [json.dumps({"step": every * (i + 1), "eval": {"val_loss": v}}) for i, v in enumerate(losses)]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return run


def test_flat_last_fifth_is_converged_and_falling_one_is_not(tmp_path):
    flat = read_curve(_run(tmp_path, "flat", [2.0, 1.0, 0.5, 0.41, 0.40, 0.40, 0.40, 0.40, 0.399, 0.40]), "a", ["x"], 1000)
    falling = read_curve(_run(tmp_path, "falling", [2.0, 1.5, 1.2, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.45]), "b", ["x"], 1000)
    assert flat.drop_over_last_part() == pytest.approx((0.40 - 0.399) / 0.40)
    assert flat.converged is True
    assert falling.drop_over_last_part() == pytest.approx((0.6 - 0.45) / 0.6)
    assert falling.converged is False


def test_a_resumed_run_keeps_the_last_record_of_a_step_and_short_runs_have_no_verdict(tmp_path):
    run = _run(tmp_path, "resumed", [1.0, 0.9])
    with (run / "metrics.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"step": 200, "eval": {"val_loss": 0.8}}) + "\n")
    curve = read_curve(run, "a", ["x"], 1000)
    assert curve.steps == [100, 200] and curve.val_loss == [1.0, 0.8]
    assert curve.converged is None  # no point in the last fifth yet


def test_plot_writes_one_png(tmp_path):
    curves = [read_curve(_run(tmp_path, f"r{i}", [1.0, 0.5, 0.4, 0.4, 0.4]), m, [t], 500) for i, (m, t) in enumerate([("a", "x"), ("b", "x"), ("b", "y")])]
    plot_curves(curves, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes().startswith(PNG_MAGIC)


def test_each_line_of_a_panel_is_labelled_by_what_tells_it_apart(tmp_path):
    run = _run(tmp_path, "r", [1.0, 0.5])
    multi = [read_curve(run, "hyperloader", ["atis", "snips"], 200, seed=s) for s in (42, 43, 44)]
    assert [curve_label(c, multi) for c in multi] == ["seed 42", "seed 43", "seed 44"]  # (was "atis" three times)
    single = [read_curve(run, "unipelt", [t], 200, seed=s) for s in (42, 43) for t in ("atis", "snips")]
    assert [curve_label(c, single) for c in single] == ["atis, seed 42", "snips, seed 42", "atis, seed 43", "snips, seed 43"]
    # A colour per task and a line style per seed where both vary; a colour per seed otherwise.
    assert [line_style(c, single) for c in single] == [("C0", "-"), ("C1", "-"), ("C0", "--"), ("C1", "--")]
    assert [line_style(c, multi) for c in multi] == [("C0", "-"), ("C1", "-"), ("C2", "-")]
    one_seed = single[:2]
    assert [curve_label(c, one_seed) for c in one_seed] == ["atis", "snips"]
    assert curve_label(multi[0], multi[:1]) is None
