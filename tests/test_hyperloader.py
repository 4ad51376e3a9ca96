"""HyperLoader on a tiny random T5: hypernetwork pass, trainable set, LoRA init, cache/merge, registry."""

from __future__ import annotations

import pytest
import torch

from conftest import save_tiny_t5
from hlcli.data.example import Example
from hlcli.errors import UsageError
from hlcli.methods import build_model, known_methods, method_config
from hlcli.methods.base import TaskSpec
from hlcli.methods.hyperloader.hypernetwork import GeneratedWeights, HyperNetwork, HyperNetworkConfig
from hlcli.methods.hyperloader.model import WeightSourceT5Tagger
from hlcli.methods.hyperloader.weight_source import StaticWeightSource

TASKS = [TaskSpec("ner", ["LOC", "PER"]), TaskSpec("slots", ["MUSIC_ITEM", "TRACK"])]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory, t5_tokenizer_path) -> str:
    """A 2-layer random T5 whose attention inner size (4·32) differs from d_model (64)."""
    return save_tiny_t5(tmp_path_factory.mktemp("tiny-t5"), t5_tokenizer_path, d_model=64, d_ff=128, num_heads=4, d_kv=32)


def examples() -> list[Example]:
    return [
        Example("ner", ("John", "lives", "in", "Paris"), ("B-PER", "O", "O", "B-LOC")),
        Example("ner", ("New", "York", "is", "big", "."), ("B-LOC", "I-LOC", "O", "O", "O")),
    ]


def randomize_generators(model: WeightSourceT5Tagger) -> None:
    """Give LoRA B and the layer-norm generators non-trivial values (they start near 0)."""
    with torch.no_grad():
        for name, p in model.source.named_parameters():
            if "lora_B" in name or "ln_" in name or "adapter_up" in name:
                p.normal_(0, 0.05)


def test_one_pass_equals_naive_per_layer_position():
    torch.manual_seed(1)
    config = HyperNetworkConfig(reduction_factor=8)
    net = HyperNetwork(config, n_layers=3, d_model=32, attn_inner_dim=48, n_positions=6)
    with torch.no_grad():
        net.lora_B.weight.normal_()
    # In float64: the test is about which row each layer and position gets, and float32 sums taken in
    # another order (one batched matmul against one per position) differ in the last bits by CPU:
    # 1.1e-5 on one lora_B entry of N(0, 1) weights on an AVX-512 AMD EPYC (2026-12-04), just over
    # float32's default tolerance. In float64 both orders agree to ~1e-15, far inside its default
    # (rtol 1e-7), on any CPU; a wrong row or position would differ by O(1).
    net, task = net.double(), torch.randn(64, dtype=torch.float64)
    w = net(task)
    for layer in range(3):
        for position in range(6):
            x = torch.cat([task, net.layer_embeddings.weight[layer], net.position_embeddings.weight[position]])
            h = net.projector(x)
            if position < 2:
                torch.testing.assert_close(w.adapter_down[layer, position], net.adapter_down(h).view(4, 32))
                torch.testing.assert_close(w.adapter_down_bias[layer, position], net.adapter_down_bias(h))
                torch.testing.assert_close(w.adapter_up[layer, position], net.adapter_up(h).view(32, 4))
                torch.testing.assert_close(w.adapter_up_bias[layer, position], net.adapter_up_bias(h))
                torch.testing.assert_close(w.ln_weight[layer, position], net.ln_weight(h))
                torch.testing.assert_close(w.ln_bias[layer, position], net.ln_bias(h))
            else:
                slot = w.lora_slot(position)
                torch.testing.assert_close(w.lora_A[layer, slot], net.lora_A(h).view(8, 32))
                torch.testing.assert_close(w.lora_B[layer, slot], net.lora_B(h).view(48, 8))


def test_used_positions_restrict_lora_rows():
    net = HyperNetwork(HyperNetworkConfig(), n_layers=2, d_model=64, attn_inner_dim=64, n_positions=6, used_positions=range(4))
    w = net(torch.randn(64))
    assert w.lora_positions == (2, 3) and w.lora_A.shape == (2, 2, 8, 64)
    assert net.position_embeddings.num_embeddings == 6


def test_lora_update_is_zero_at_step_zero(tiny_t5):
    model = build_model("hyperloader", backbone=tiny_t5, tasks=TASKS)
    weights = model.source(0)
    for stack in ("encoder", "decoder"):
        assert torch.count_nonzero(weights[stack].lora_B) == 0
        assert torch.count_nonzero(weights[stack].lora_A) > 0
    model.eval()
    _, merged = model.generated_weights("ner", use_cache=True)
    q0 = model.backbone.decoder.block[1].layer[1].EncDecAttention.v.weight
    assert torch.equal(merged["decoder"][1, 3], q0)


def test_gradients_reach_exactly_the_trainable_set(tiny_t5):
    model = build_model("hyperloader", backbone=tiny_t5, tasks=TASKS)
    randomize_generators(model)
    model.train()
    model.loss("ner", model.collate("ner", examples()), label_smoothing=0.1).backward()
    wrong = [n for n, p in model.named_parameters() if (p.grad is not None) != p.requires_grad]
    assert wrong == []
    # The second task's embedding row gets no gradient from a batch of the first task.
    assert torch.count_nonzero(model.source.task_embeddings.weight.grad[1]) == 0
    assert torch.count_nonzero(model.source.task_embeddings.weight.grad[0]) > 0


def test_the_loss_gathers_target_tokens_exactly_as_a_boolean_mask_does(tiny_t5):
    # collate finds the target positions on the host so the loss needs no nonzero() on the GPU;
    # the numbers must be those of the boolean-mask form it replaced, bit for bit.
    model = build_model("hyperloader", backbone=tiny_t5, tasks=TASKS)
    randomize_generators(model)
    model.eval()
    batch = model.collate("ner", examples())
    labels = batch["labels"]
    with torch.no_grad():
        states = model._decoder_states("ner", batch)
        logits = model.backbone.lm_head(states[labels != -100])
        masked = torch.nn.functional.cross_entropy(logits.float(), labels[labels != -100], label_smoothing=0.1)
        assert torch.equal(model.loss("ner", batch, label_smoothing=0.1), masked)
        without = {k: v for k, v in batch.items() if k != "target_positions"}
        assert torch.equal(model.loss("ner", without, label_smoothing=0.1), masked)
    assert batch["target_positions"].tolist() == (labels.flatten() != -100).nonzero().flatten().tolist()


def test_cached_merged_inference_equals_uncached(tiny_t5):
    model = build_model("hyperloader", backbone=tiny_t5, tasks=TASKS)
    randomize_generators(model)
    batch = model.collate("ner", examples())
    model.eval()
    with torch.no_grad():
        reference = model("ner", batch, use_cache=False)
        # float32: only rounding differs (W0 x + B(A x) vs (W0 + BA) x)
        torch.testing.assert_close(model("ner", batch), reference, rtol=1e-3, atol=2e-3)
        model.double()  # float64: the merge is exact up to double rounding
        reference = model("ner", batch, use_cache=False)
        cached = model("ner", batch)
        assert model._cache is not None and model._cache[2] is not None  # merged q/v in use
        again = model("ner", batch)
    torch.testing.assert_close(cached, reference, rtol=1e-10, atol=1e-10)
    assert torch.equal(cached, again)


def test_cache_follows_parameter_updates_and_invalidation(tiny_t5):
    model = build_model("hyperloader", backbone=tiny_t5, tasks=TASKS)
    batch = model.collate("ner", examples())
    # float64: a B ~ N(0, 0.1) makes ΔW ~ 1, and in float32 the merged-vs-unmerged rounding
    # (W0 + BA)x vs W0 x + B(Ax) then reaches ~5e-3 on some random draws (sharp attention
    # amplifies it); in float64 only a stale cache could leave a difference above 1e-10.
    model.double()
    model.eval()
    with torch.no_grad():
        before = model("ner", batch)
        model.source.hypernetworks["decoder"].lora_B.weight.normal_(0, 0.1)  # in place, like an optimizer step
        after = model("ner", batch)
        reference = model("ner", batch, use_cache=False)
    assert (before - after).abs().max() > 0.1  # the cached weights were regenerated
    torch.testing.assert_close(after, reference, rtol=1e-10, atol=1e-10)
    model.invalidate_cache()
    assert model._cache is None


def test_training_never_uses_cache(tiny_t5):
    model = build_model("hyperloader", backbone=tiny_t5, tasks=TASKS)
    model.train()
    loss = model.loss("ner", model.collate("ner", examples()))
    assert model._cache is None and loss.requires_grad
    with pytest.raises(RuntimeError):
        with model.using_task("ner", use_cache=True):
            pass


def test_static_weight_source_shares_the_layer_modules(tiny_t5):
    model = build_model("hyperloader", backbone=tiny_t5, tasks=TASKS)
    static = StaticWeightSource(model.method_config, n_tasks=2, stacks=model.stack_specs, per_task=True)
    model.source = static
    model.invalidate_cache()
    model.train()
    model.loss("ner", model.collate("ner", examples())).backward()
    adapter_down = static.stacks["encoder"]["adapter_down"]
    assert adapter_down.grad is not None and torch.count_nonzero(adapter_down.grad[1]) == 0
    assert isinstance(static(1)["decoder"], GeneratedWeights)


def test_hyperformer_builds_without_lora(tiny_t5):
    model = build_model("hyperformer", backbone=tiny_t5, tasks=TASKS)
    assert model.method == "hyperformer"
    assert model.source(0)["decoder"].lora_A is None
    model.eval()
    with torch.no_grad():
        assert model("ner", model.collate("ner", examples())).shape[-1] == 32128
    assert [len(t) for t in model.predict("ner", [["a", "b"], ["c"]])] == [2, 1]


def test_registry_errors():
    assert {"hyperloader", "hyperformer"} <= set(known_methods())
    with pytest.raises(UsageError, match="known methods: .*hyperformer.*hyperloader"):
        method_config("nope", {})
    with pytest.raises(UsageError, match="lora_rnak.*lora_rank"):
        method_config("hyperloader", {"lora_rnak": 4})
    with pytest.raises(UsageError, match="hyperloader"):
        method_config("hyperformer", {"use_lora": True})
    with pytest.raises(UsageError):
        method_config("hyperloader", {"lora_rank": 0})
    assert method_config("hyperloader", {"lora_rank": 4}).lora_scaling == 2.0


def test_unknown_task_and_foreign_label(tiny_t5):
    model = build_model("hyperloader", backbone=tiny_t5, tasks=TASKS)
    with pytest.raises(UsageError, match="known tasks"):
        model.collate("nope", examples())
    from hlcli.errors import HLError

    with pytest.raises(HLError, match="MUSIC_ITEM"):
        model.collate("ner", [Example("ner", ("a",), ("B-MUSIC_ITEM",))])


def test_deepcopy_reads_its_own_weights(tiny_t5):
    import copy

    model = build_model("hyperloader", backbone=tiny_t5, tasks=TASKS)
    randomize_generators(model)
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.source.task_embeddings.weight.add_(1.0)
    batch = model.collate("ner", examples())
    model.eval()
    twin.eval()
    with torch.no_grad():
        assert not torch.allclose(model("ner", batch, use_cache=False), twin("ner", batch, use_cache=False))


def test_backbone_resolution(tmp_path):
    from hlcli.backbones import Backbone, load_backbone_config, resolve_backbone
    from hlcli.errors import HLError
    from hlcli.methods.hyperloader import build_hyperloader

    assert load_backbone_config("minilm").model_type == "bert"
    assert resolve_backbone("minilm").endswith("model")
    with pytest.raises(HLError, match="not a model folder"):
        resolve_backbone(str(tmp_path))
    with pytest.raises(HLError, match="cannot load the config of backbone 'no-such/model'"):
        load_backbone_config("no-such/model")
    fake = Backbone("gpt", "gpt", type("C", (), {"model_type": "gpt2"})(), None, None)
    with pytest.raises(UsageError, match="model_type 'gpt2'"):
        build_hyperloader(method_config("hyperloader", {}), fake, TASKS)
