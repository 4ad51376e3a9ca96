"""The authors' modules and run settings (issue 18), pinned against hand-computed values.

Sources (jgermanob/hyperformer at 0964199, read, not copied; docs/fidelity.md lists them all):

* the projector's Linears (192 → 128 → 64) ~ N(0, 0.01) with zero bias: ``init_linear_layer`` in
  ``hyperformer/adapters/adapter_utils.py``;
* the projector's LayerNorm eps 1e-6: ``adapter_modeling.py`` (``layer_norm_epsilon = 1e-6``);
* the adapter activation ``gelu_new`` (tanh approximation): ``configs/hyperformer++.json``;
* the summed loss: ``third_party/utils/utils.py`` ``label_smoothed_nll_loss`` (``.sum()``);
* the last model scored: ``outputs/*/arguments_results.json`` (no evaluation during training).
"""

from __future__ import annotations

import math

import pytest
import torch

from hlcli.methods import build_model
from hlcli.methods.base import TaskSpec
from hlcli.methods.hyperloader import adapter as adapter_module
from hlcli.methods.hyperloader.adapter import adapter_activation, apply_adapter
from hlcli.methods.hyperloader.hypernetwork import GeneratedWeights, HyperNetwork, HyperNetworkConfig

pytestmark = pytest.mark.usefixtures("one_thread")

TASKS = [TaskSpec("atis", ["city", "date"]), TaskSpec("snips", ["artist"])]
FAITHFUL_METHODS = ["hyperloader", "hyperformer", "lora-only"]


# -- 1. the projector's initialisation: N(0, 0.01), bias 0 ------------------------------------------
def assert_normal_with_std(weight: torch.Tensor, std: float) -> None:
    """Sample mean, std and excess kurtosis of ``weight`` against N(0, std²).

    For n iid normal draws the standard errors are std/√n (mean), std/√(2n) (std) and √(24/n)
    (excess kurtosis); 6 of them bound a false failure at ~1e-9 per check. PyTorch's default
    init (Kaiming-uniform) fails all three: std 0.042 / 0.051 here, excess kurtosis -1.2.
    """
    x = weight.detach().double().flatten()
    n = x.numel()
    mean, sample_std = x.mean().item(), x.std().item()
    kurtosis = (((x - mean) / sample_std) ** 4).mean().item() - 3.0
    assert abs(mean) < 6 * std / math.sqrt(n)
    assert abs(sample_std / std - 1.0) < 6 / math.sqrt(2 * n)
    assert abs(kurtosis) < 6 * math.sqrt(24 / n)


def test_projector_linears_are_normal_with_std_0_01_and_zero_bias():
    torch.manual_seed(0)
    net = HyperNetwork(HyperNetworkConfig(), n_layers=12, d_model=768, attn_inner_dim=768, n_positions=6)
    first, second = net.projector[0], net.projector[2]
    assert (first.in_features, first.out_features, second.out_features) == (192, 128, 64)  # the paper's shapes
    for linear in (first, second):
        assert_normal_with_std(linear.weight, 0.01)
        assert torch.count_nonzero(linear.bias) == 0


@pytest.fixture(scope="module")
def backbones(tmp_path_factory, t5_tokenizer_path):
    from conftest import save_tiny_t5

    root = tmp_path_factory.mktemp("fidelity-backbones")
    paths = {"t5": save_tiny_t5(root / "t5", t5_tokenizer_path)}
    try:
        from _adapt_runs import save_tiny_bert

        paths["bert"] = save_tiny_bert(root / "bert")
    except ImportError:  # no packaged MiniLM tokenizer: the encoder cases skip
        pass
    return paths


@pytest.mark.parametrize("kind", ["t5", "bert"])
@pytest.mark.parametrize("method", FAITHFUL_METHODS)
def test_every_hypernetwork_of_the_faithful_methods_has_the_authors_projector(backbones, method, kind):
    if kind not in backbones:
        pytest.skip("needs the packaged MiniLM tokenizer")
    torch.manual_seed(3)
    model = build_model(method, backbone=backbones[kind], tasks=TASKS)
    nets = [m for m in model.modules() if isinstance(m, HyperNetwork)]
    assert len(nets) == (2 if kind == "t5" else 1)  # T5: encoder and decoder stacks
    for net in nets:
        for linear in (net.projector[0], net.projector[2]):
            assert_normal_with_std(linear.weight, 0.01)
            assert torch.count_nonzero(linear.bias) == 0
        assert net.projector[3].eps == 1e-6


# -- 2. the projector's LayerNorm: eps 1e-6 --------------------------------------------------------
def test_projector_layer_norm_uses_eps_1e_6_on_a_hand_computed_case():
    # A tiny projector whose second Linear is zeroed with bias v: every row's pre-LayerNorm vector
    # is v, so the projected embedding is (v - mean) / sqrt(var + eps) with γ = 1, β = 0.
    config = HyperNetworkConfig(task_embedding_dim=2, layer_embedding_dim=2, position_embedding_dim=2,
                                projector_hidden_dim=3, hyper_dim=4, reduction_factor=2, lora_rank=1)
    net = HyperNetwork(config, n_layers=2, d_model=4, attn_inner_dim=4, n_positions=4).double()
    v = torch.tensor([0.01, -0.01, 0.02, -0.02], dtype=torch.float64)
    with torch.no_grad():
        net.projector[2].weight.zero_()
        net.projector[2].bias.copy_(v)
        h = net.embed(torch.ones(2, dtype=torch.float64))
    # mean 0, var = (1e-4 + 1e-4 + 4e-4 + 4e-4) / 4 = 2.5e-4; 0.01 / sqrt(2.5e-4 + 1e-6) = 0.63119440...
    by_hand = torch.tensor([0.6311944030978032, -0.6311944030978032, 1.2623888061956063, -1.2623888061956063],
                           dtype=torch.float64)
    assert h.shape == (2, 4, 4)
    # float64 rounding of a 4-element mean/var: ~1e-16 relative; 1e-12 leaves room, and eps 1e-5
    # (nn.LayerNorm's default) would give 0.62017..., 1.1e-2 away.
    torch.testing.assert_close(h, by_hand.expand_as(h), rtol=0, atol=1e-12)


# -- 3. the adapter activation: gelu_new --------------------------------------------------------------
def gelu_new_by_formula(x: float) -> float:
    return 0.5 * x * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def test_adapter_activation_is_the_tanh_approximation_not_exact_gelu():
    from transformers.activations import ACT2FN

    points = [1.0, -1.0, 2.0, -3.0, 0.5]
    x = torch.tensor(points, dtype=torch.float64)
    got = adapter_activation(x)
    # gelu_new(1) = 0.5 (1 + tanh(0.79788456 · 1.044715)) = 0.84119199...; exact gelu(1) = 0.84134475
    assert got[0].item() == pytest.approx(0.8411919906082768, abs=1e-14)
    # float64: the formula evaluated two ways differs by a few ulps (~1e-16); 1e-14 is generous.
    torch.testing.assert_close(got, torch.tensor([gelu_new_by_formula(p) for p in points], dtype=torch.float64),
                               rtol=0, atol=1e-14)
    torch.testing.assert_close(got, ACT2FN["gelu_new"](x), rtol=0, atol=1e-14)  # what the authors' code called
    exact = torch.nn.functional.gelu(x)
    assert (got - exact).abs().max().item() > 4e-4  # at x = -3: 4.1e-4 apart, far above float64 noise


def test_apply_adapter_puts_gelu_new_between_down_and_up_by_hand():
    # d = 2, bottleneck 1, no layer norm: y' = y + U · gelu_new(D · y + b_D) + b_U
    weights = GeneratedWeights(
        adapter_down=torch.tensor([[[[1.0, 0.0]]]], dtype=torch.float64),  # [L=1, slot=1, b=1, d=2]
        adapter_down_bias=torch.tensor([[[0.0]]], dtype=torch.float64),
        adapter_up=torch.tensor([[[[1.0], [0.0]]]], dtype=torch.float64),  # [1, 1, d=2, b=1]
        adapter_up_bias=torch.tensor([[[0.0, 0.5]]], dtype=torch.float64),
    )
    y = torch.tensor([[1.0, 5.0]], dtype=torch.float64)
    out = apply_adapter(y, weights, 0, 0)
    # D·y = 1 → gelu_new(1) = 0.8411919906; y' = (1 + 0.8411919906, 5 + 0.5)
    torch.testing.assert_close(out, torch.tensor([[1.8411919906082768, 5.5]], dtype=torch.float64), rtol=0, atol=1e-14)


@pytest.mark.parametrize("kind", ["t5", "bert"])
@pytest.mark.parametrize("method", FAITHFUL_METHODS)
def test_both_backbone_paths_run_their_adapters_through_gelu_new(backbones, method, kind, monkeypatch):
    if kind not in backbones:
        pytest.skip("needs the packaged MiniLM tokenizer")
    from hlcli.data.example import Example

    calls = []

    def counted(x):
        calls.append(x.shape)
        return adapter_activation(x)

    monkeypatch.setattr(adapter_module, "adapter_activation", counted)
    torch.manual_seed(3)
    model = build_model(method, backbone=backbones[kind], tasks=TASKS)
    batch = model.collate("atis", [Example("atis", ("fly", "to", "boston"), ("O", "O", "B-city"))])
    model.loss("atis", batch)
    layers, adapters_per_layer = 2, (2 if method != "lora-only" else 0)  # after attention and after FF
    stacks = 2 if kind == "t5" else 1
    assert len(calls) == stacks * layers * adapters_per_layer


# -- 4. loss_reduction = "sum": the authors' summed label-smoothed loss --------------------------------
FLIGHTS = [
    ("fly", "to", "boston", "tomorrow"),
    ("from", "denver"),
    ("boston", "to", "denver", "on", "monday", "morning"),
    ("to", "boston"),
]
TAGS = [("O", "O", "B-city", "B-date"), ("O", "B-city"), ("B-city", "O", "B-city", "O", "B-date", "I-date"), ("O", "B-city")]


def flights(indices):
    from hlcli.data.example import Example

    return [Example("atis", FLIGHTS[i], TAGS[i]) for i in indices]


@pytest.mark.parametrize("kind", ["t5", "bert"])
def test_summed_loss_is_the_mean_times_the_target_tokens(backbones, kind):
    if kind not in backbones:
        pytest.skip("needs the packaged MiniLM tokenizer")
    torch.manual_seed(3)
    model = build_model("hyperloader", backbone=backbones[kind], tasks=TASKS).eval()
    batch = model.collate("atis", flights(range(4)))
    # T5: every target token of the SentT' output (-100 = padding); encoders: every labelled word.
    tokens = int((batch["labels"] != -100).sum())
    with torch.no_grad():
        mean = model.loss("atis", batch, label_smoothing=0.1)
        total = model.loss("atis", batch, label_smoothing=0.1, reduction="sum")
    assert tokens > 4
    # Both reduce the same float32 per-token losses (PyTorch's mean is the sum / n): ~1e-7
    # relative apart; 1e-5 leaves room for a different summation order.
    assert total.item() == pytest.approx(mean.item() * tokens, rel=1e-5)


def one_sgd_step(model, micro_batches, *, grad_accum: int, reduction: str) -> dict[str, torch.Tensor]:
    """Parameter deltas after hlcli's own optimizer step with SGD at lr 1 (delta = -gradient)."""
    from accelerate import Accelerator

    from hlcli.config import TrainConfig
    from hlcli.training.loop import Loop, LossModule, optimizer_step

    config = TrainConfig(tasks=["atis"], grad_accum=grad_accum, loss_reduction=reduction, max_grad_norm=0.0,
                         label_smoothing=0.1)
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=grad_accum)  # as hl train builds it
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.SGD(params, lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    batches = iter([("atis", model.collate("atis", flights(indices))) for indices in micro_batches])
    loop = Loop(config, accelerator, model, LossModule(model), params, optimizer, scheduler, batches)
    assert optimizer_step(loop) is not None
    deltas = {str(i): p.detach() - b for i, (p, b) in enumerate(zip(params, before))}
    with torch.no_grad():
        for p, b in zip(params, before):
            p.copy_(b)
    return deltas


def test_summed_loss_with_gradient_accumulation_is_one_batch_of_all_the_sentences(backbones):
    # grad_accum 2 x 2 sentences with loss_reduction "sum" must give the gradient of the sum over
    # all 4 sentences' target tokens, i.e. one batch of 4; in float64 only the summation order
    # differs (~1e-16 relative), so 1e-10 separates it from a factor (the mean/accumulation's 1/2).
    torch.manual_seed(3)
    model = build_model("hyperloader", backbone=backbones["t5"], tasks=TASKS).double().eval()  # eval: no dropout
    whole = one_sgd_step(model, [range(4)], grad_accum=1, reduction="sum")
    accumulated = one_sgd_step(model, [range(2), range(2, 4)], grad_accum=2, reduction="sum")
    assert max(d.abs().max().item() for d in whole.values()) > 1e-3  # a real gradient reached the parameters
    for name in whole:
        torch.testing.assert_close(accumulated[name], whole[name], rtol=1e-10, atol=1e-12)
    # The mean is per micro-batch (then averaged over them): not one batch's mean, and far from the sum.
    mean = one_sgd_step(model, [range(2), range(2, 4)], grad_accum=2, reduction="mean")
    ratio = sum(d.abs().sum() for d in whole.values()) / sum(d.abs().sum() for d in mean.values())
    assert ratio > 5  # the sum over ~40 target tokens vs a mean


# -- 5. select_checkpoint = "last": the final model is scored -----------------------------------------
def test_evaluate_scores_the_last_checkpoint_when_the_recipe_says_so(tmp_path, tiny_run, toy_tasks):
    import json

    from _cli import invoke
    from hlcli import runs

    recipe = tmp_path / "last.toml"
    recipe.write_text('select_checkpoint = "last"  # as the authors\' runs were scored\n', encoding="utf-8")
    run = tmp_path / "run"
    # Evaluations at steps 2 and 4 write checkpoints/best too: the recipe, not their absence, picks last.
    trained = invoke("train", "--recipe", recipe, "--tasks", toy_tasks("flights"), *tiny_run, "--max-steps", 4,
                     "--output-dir", run)  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert runs.is_checkpoint_dir(run / "checkpoints" / "best")
    assert json.loads((run / "config.json").read_text())["select_checkpoint"] == "last"
    assert runs.resolve_checkpoint(run) == (run / "checkpoints" / "last", run)

    result = invoke("evaluate", run, "--split", "val")
    assert result.exit_code == 0, result.output
    assert f"checkpoint: {run / 'checkpoints' / 'last'} — last, step 4 (select_checkpoint = \"last\")" in result.stdout
    assert json.loads((run / "eval.json").read_text())["val"]["checkpoint"] == str(run / "checkpoints" / "last")

    # The same run recorded with the default (best) scores checkpoints/best, and says so.
    config = json.loads((run / "config.json").read_text())
    config["select_checkpoint"] = "best"
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    result = invoke("evaluate", run, "--split", "val")
    assert result.exit_code == 0, result.output
    assert f"checkpoint: {run / 'checkpoints' / 'best'} — best, step" in result.stdout
    assert '(select_checkpoint = "best")' in result.stdout


def test_a_run_recorded_before_select_checkpoint_existed_still_means_best(tmp_path):
    from hlcli import runs

    run = tmp_path / "old-run"
    for which in ("best", "last"):
        (run / "checkpoints" / which).mkdir(parents=True)
        (run / "checkpoints" / which / "model.safetensors").write_bytes(b"")
    (run / "config.json").write_text('{"tasks": ["atis"], "max_steps": 4}', encoding="utf-8")
    assert runs.selected_checkpoint(run) == "best"
    assert runs.resolve_checkpoint(run)[0] == run / "checkpoints" / "best"
    (run / "config.json").write_text('{"tasks": ["atis"], "select_checkpoint": "last"}', encoding="utf-8")
    assert runs.resolve_checkpoint(run)[0] == run / "checkpoints" / "last"
