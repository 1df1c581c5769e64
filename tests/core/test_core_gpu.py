"""CUDA only (``make test-gpu``, ``scripts/device_check.sh``): every fused SDPA kernel (flash, cuDNN,
memory-efficient) against the math reference, forward and backward; the DiT on the GPU against the CPU in fp32, and
its bf16-autocast train step; regional compilation on the GPU. Skipped without CUDA."""

import copy

import pytest
import torch

from ditkit_core.lightning import compile_blocks
from ditkit_core.nn import DiT, DiTConfig, attention
from ditkit_core.testing import perturb_weights

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _qkv(n: int = 512, d: int = 64) -> tuple[torch.Tensor, ...]:
    g = torch.Generator(device="cuda").manual_seed(0)
    return tuple(
        torch.randn(2, 4, n, d, device="cuda", dtype=torch.bfloat16, generator=g).requires_grad_() for _ in range(3)
    )


@pytest.mark.parametrize("kernel", ["FLASH_ATTENTION", "CUDNN_ATTENTION", "EFFICIENT_ATTENTION"])
def test_each_fused_sdpa_kernel_matches_math_forward_and_backward(kernel):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = _qkv()
    qf, kf, vf = (t.detach().float().requires_grad_() for t in (q, k, v))
    ref = attention(qf, kf, vf, backend="math")
    ref.pow(2).sum().backward()
    try:
        with sdpa_kernel(getattr(SDPBackend, kernel)):
            out = attention(q, k, v, backend="sdpa")
            out.float().pow(2).sum().backward()
    except RuntimeError as err:  # this build or GPU has no such kernel
        pytest.skip(f"{kernel}: {err}")
    torch.testing.assert_close(out.float(), ref.detach(), atol=3e-2, rtol=3e-2)
    for fused, exact in ((q, qf), (k, kf), (v, vf)):
        rel = (fused.grad.float() - exact.grad).norm() / exact.grad.norm()
        assert rel < 3e-2, (kernel, float(rel))


def _dit() -> tuple[DiT, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    m = DiT(DiTConfig(in_dim=4, dim=128, depth=2, heads=4, num_classes=10))
    perturb_weights(m, scale=0.05, seed=0)  # adaLN-zero blocks would otherwise output zeros
    return m, (torch.randn(2, 64, 4), torch.rand(2), torch.tensor([1, 3]))


def test_dit_on_cuda_matches_cpu_in_fp32_and_trains_under_bf16_autocast():
    m, (x, t, y) = _dit()
    ref = m(x, t, cond=y)
    mc = copy.deepcopy(m).cuda()
    xc, tc, yc = x.cuda(), t.cuda(), y.cuda()
    torch.testing.assert_close(mc(xc, tc, cond=yc).cpu(), ref, atol=2e-3, rtol=2e-3)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = mc(xc, tc, cond=yc)
    assert float((out.float().cpu() - ref).norm() / ref.norm()) < 5e-2
    out.float().pow(2).mean().backward()
    grads = [p.grad for p in mc.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_compiled_blocks_on_cuda_match_eager():
    m, (x, t, y) = _dit()
    m = m.cuda()
    xc, tc, yc = x.cuda(), t.cuda(), y.cuda()
    eager = m(xc, tc, cond=yc)
    assert compile_blocks(m) == 2
    torch.testing.assert_close(m(xc, tc, cond=yc), eager, atol=2e-3, rtol=2e-3)
