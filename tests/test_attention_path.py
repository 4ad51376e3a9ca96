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


class _CudaLike:
    """A query that says it lives on a GPU: the wrapper only asks ``query.is_cuda`` before SDPA."""

    is_cuda = True


def test_on_cuda_sdpa_runs_with_cudnn_off_and_the_flag_comes_back(monkeypatch):
    calls = []

    def sdpa(*args, **kwargs):
        calls.append((args, kwargs, torch.backends.cuda.cudnn_sdp_enabled()))

    monkeypatch.setattr(t5, "_SDPA", sdpa)
    before = torch.backends.cuda.cudnn_sdp_enabled()
    module, query, key, value, mask = object(), _CudaLike(), object(), object(), object()
    try:
        torch.backends.cuda.enable_cudnn_sdp(True)
        t5.biased_sdpa_attention(module, query, key, value, mask, scaling=1.0)
        ((args, kwargs, enabled_during),) = calls
        assert enabled_during is False  # the whole point: no cuDNN fused kernel for biased attention
        assert all(a is b for a, b in zip(args, (module, query, key, value, mask))) and kwargs == {"scaling": 1.0}
        assert torch.backends.cuda.cudnn_sdp_enabled() is True  # back on afterwards

        monkeypatch.setattr(t5, "_SDPA", lambda *args, **kwargs: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            t5.biased_sdpa_attention(module, query, key, value, mask)
        assert torch.backends.cuda.cudnn_sdp_enabled() is True  # and after an error

        torch.backends.cuda.enable_cudnn_sdp(False)  # switched off by the user: stays off
        monkeypatch.setattr(t5, "_SDPA", sdpa)
        t5.biased_sdpa_attention(module, query, key, value, mask)
        assert calls[-1][2] is False and torch.backends.cuda.cudnn_sdp_enabled() is False
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

    model = build_model("hyperloader", backbone=tiny_t5, tasks=TASKS).to("cuda", torch.bfloat16).train()
    batch = {k: v.cuda() for k, v in _batch(model).items()}
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        model.loss("ner", batch).backward()
        torch.cuda.synchronize()
    names = {event.name for event in prof.events()}
    assert "aten::scaled_dot_product_attention" in names
    assert not [n for n in names if "cudnn_attention" in n]
