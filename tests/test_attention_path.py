"""Which attention kernel a HyperLoader T5 uses (issue 10): never cuDNN's fused SDPA, which took
4-5 ms per call for T5's biased attention on an H200. On a CPU the code path is pinned; on CUDA
the kernel the profiler sees (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch

from hlcli.methods import build_model
from hlcli.methods.base import TaskSpec
from hlcli.methods.hyperloader import t5

TASKS = [TaskSpec("ner", ["LOC", "PER"])]


def _batch(model):
    from hlcli.data.example import Example

    return model.collate("ner", [Example("ner", ("John", "lives", "in", "Paris"), ("B-PER", "O", "O", "B-LOC"))])


def test_every_t5_attention_goes_through_the_no_cudnn_implementation(tiny_t5, monkeypatch):
    model = build_model("hyperloader", backbone=tiny_t5, tasks=TASKS)
    calls = []
    inner = t5._SDPA
    monkeypatch.setattr(t5, "_SDPA", lambda *args, **kwargs: (calls.append(args[0]), inner(*args, **kwargs))[1])
    model.train()
    model.loss("ner", _batch(model)).backward()
    attentions = [m for m in model.backbone.modules() if type(m).__name__ == "T5Attention"]
    # 2 encoder self-attentions, 2 decoder self- and 2 cross-attentions: each called once.
    assert len(calls) == len(attentions) == 6
    assert {id(m) for m in calls} == {id(m) for m in attentions}


def test_on_cpu_the_wrapper_computes_biased_attention():
    # Real tensors through the wrapper: T5's attention is unscaled, with the position bias added to
    # the mask. Checked against softmax(q k^T + bias) v written out here; 1e-6 absolute on values
    # of order 1 covers float32 summation order (SDPA's kernel vs matmul).
    generator = torch.Generator().manual_seed(0)
    query, key, value = (torch.randn(2, 2, 5, 8, generator=generator) for _ in range(3))  # batch, heads, tokens, dim
    bias = torch.randn(2, 2, 5, 5, generator=generator)
    module = torch.nn.Module()
    module.is_causal = False
    before = torch.backends.cuda.cudnn_sdp_enabled()
    out, weights = t5.biased_sdpa_attention(module, query, key, value, bias, dropout=0.0, scaling=1.0)
    expected = torch.softmax(query @ key.transpose(-1, -2) + bias, dim=-1) @ value
    assert weights is None and out.shape == (2, 5, 2, 8)  # transformers' layout: batch, tokens, heads, dim
    torch.testing.assert_close(out, expected.transpose(1, 2), rtol=0, atol=1e-6)
    assert torch.backends.cuda.cudnn_sdp_enabled() == before  # nothing to switch off on a CPU


def _placed_on_fake_cuda(model):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))  # "placed on a GPU"
        model.to(torch.float32)


def test_cudnn_is_ruled_out_only_while_a_model_on_cuda_runs(tiny_t5, monkeypatch):
    """cuDNN's fused SDPA is off while a HyperLoader T5 placed on CUDA runs forward (the choice is made
    at placement, ``_apply``) and back to the user's setting afterwards: torch's flag is process-wide,
    and switching it off for good made every later model of the process (the next method of an
    ``hl compare``) run without it (issue 20). Without a GPU the device check is faked."""
    model = build_model("hyperloader", backbone=tiny_t5, tasks=TASKS).eval()
    seen = []
    inner = t5._SDPA
    monkeypatch.setattr(t5, "_SDPA", lambda *a, **k: (seen.append(torch.backends.cuda.cudnn_sdp_enabled()), inner(*a, **k))[1])
    before = torch.backends.cuda.cudnn_sdp_enabled()
    try:
        for user_setting in (True, False):
            torch.backends.cuda.enable_cudnn_sdp(user_setting)
            seen.clear()
            with torch.no_grad():  # on a CPU: nothing to rule out, the flag is left as it is
                model.loss("ner", _batch(model))
            assert seen and set(seen) == {user_setting}

            _placed_on_fake_cuda(model)
            assert torch.backends.cuda.cudnn_sdp_enabled() is user_setting  # placing it changes nothing
            seen.clear()
            with torch.no_grad():
                model.loss("ner", _batch(model))
            assert seen and set(seen) == {False}  # the whole point: no cuDNN fused kernel
            assert torch.backends.cuda.cudnn_sdp_enabled() is user_setting  # and the user's setting after

            model.to(torch.float32)  # back "on a CPU": the choice follows the device
            assert model._rule_out_cudnn is False
    finally:
        torch.backends.cuda.enable_cudnn_sdp(before)


def test_overlapping_scopes_keep_cudnn_off_until_the_last_one_closes():
    """Two models (or threads) whose scopes overlap: the first to close must not switch cuDNN back on
    under the other, and the last restores what the first found."""
    import threading

    before = torch.backends.cuda.cudnn_sdp_enabled()
    try:
        torch.backends.cuda.enable_cudnn_sdp(True)
        first, second = t5.cudnn_ruled_out(), t5.cudnn_ruled_out()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert torch.backends.cuda.cudnn_sdp_enabled() is False
        second.__exit__(None, None, None)
        assert torch.backends.cuda.cudnn_sdp_enabled() is True

        barrier, inside = threading.Barrier(4), []

        def work():
            for _ in range(200):
                with t5.cudnn_ruled_out():
                    inside.append(torch.backends.cuda.cudnn_sdp_enabled())
            barrier.wait()

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(inside) == 800 and not any(inside)
        assert torch.backends.cuda.cudnn_sdp_enabled() is True and t5._CudnnScopes.open == 0
    finally:
        torch.backends.cuda.enable_cudnn_sdp(before)


def test_an_eager_backbone_stays_eager(tiny_t5):
    from transformers import AutoModelForSeq2SeqLM

    backbone = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5, attn_implementation="eager")
    t5.use_biased_attention(backbone)
    assert backbone.config._attn_implementation == "eager"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the kernel choice exists only there")
def test_on_cuda_no_cudnn_attention_kernel_runs(tiny_t5):
    from torch.profiler import ProfilerActivity, profile

    before = torch.backends.cuda.cudnn_sdp_enabled()
    model = build_model("hyperloader", backbone=tiny_t5, tasks=TASKS).to("cuda", torch.bfloat16).train()
    batch = {k: v.cuda() for k, v in _batch(model).items()}
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        model.loss("ner", batch).backward()
        torch.cuda.synchronize()
    names = {event.name for event in prof.events()}
    assert "aten::scaled_dot_product_attention" in names
    assert not [n for n in names if "cudnn_attention" in n]
    assert torch.backends.cuda.cudnn_sdp_enabled() == before  # only while the model ran
