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


def test_cuda_tensors_run_sdpa_with_cudnn_off_and_the_flag_comes_back(monkeypatch):
    class CudaLike:  # the function only asks the query where it lives
        is_cuda = True

    seen = []
    monkeypatch.setattr(t5, "_SDPA", lambda *args, **kwargs: seen.append(torch.backends.cuda.cudnn_sdp_enabled()) or "out")
    before = torch.backends.cuda.cudnn_sdp_enabled()
    torch.backends.cuda.enable_cudnn_sdp(True)
    try:
        assert t5.biased_sdpa_attention(None, CudaLike(), None, None, None) == "out"
        assert seen == [False]
        assert torch.backends.cuda.cudnn_sdp_enabled() is True
        monkeypatch.setattr(t5, "_SDPA", lambda *args, **kwargs: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            t5.biased_sdpa_attention(None, CudaLike(), None, None, None)
        assert torch.backends.cuda.cudnn_sdp_enabled() is True  # restored on error too
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
