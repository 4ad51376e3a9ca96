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


def test_a_curve_past_its_best_is_converged_against_the_best_so_far_not_the_value_at_80(tmp_path):
    # UniPELT at lr 3e-4 on Movie (2026-12-03), to 3 decimals: lowest at step 350, up to 0.374 at 800
    # (80 %), a dip to 0.352 after. Against the value at 80 % that dip was a 5.9 % fall ("not
    # converged"); against the best so far (0.299) the last fifth never came back: converged.
    losses = [0.696, 0.398, 0.321, 0.310, 0.308, 0.322, 0.299, 0.321, 0.335, 0.325,
              0.340, 0.347, 0.354, 0.349, 0.353, 0.374, 0.352, 0.360, 0.359, 0.364]
    curve = read_curve(_run(tmp_path, "past", losses, every=50), "unipelt", ["movie"], 1000)
    assert curve.best_by_start() == 0.299 and curve.best_after_start() == 0.352 and curve.best_step() == 350
    assert curve.drop_over_last_part() == pytest.approx((0.299 - 0.352) / 0.299) and curve.converged is True
    # A new best in the last fifth, 2 % or more below the best before it, is still "not converged".
    improving = read_curve(_run(tmp_path, "improving", [*losses[:16], 0.29], every=50), "unipelt", ["movie"], 1000)
    assert improving.drop_over_last_part() == pytest.approx((0.299 - 0.29) / 0.299) and improving.converged is False
    assert improving.best_step() == 850


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
    # Grid points (runs that are no final run) vary like seeds: a line style each where tasks vary.
    points = [
        read_curve(run, "unipelt", [t], 200, seed=42, point=p) for p in ("lr 1e-4", "lr 3e-4") for t in ("atis", "snips")
    ]
    labels = ["atis, lr 1e-4", "snips, lr 1e-4", "atis, lr 3e-4", "snips, lr 3e-4"]
    assert [curve_label(c, points) for c in points] == labels
    assert [line_style(c, points) for c in points] == [("C0", "-"), ("C1", "-"), ("C0", "--"), ("C1", "--")]
    one_seed = single[:2]
    assert [curve_label(c, one_seed) for c in one_seed] == ["atis", "snips"]
    assert curve_label(multi[0], multi[:1]) is None
