"""Every attention backend equals the math reference, with padding, windows, causal and empty rows."""

import pytest
import torch

from ditkit_core.nn.attention import BackendUnavailableError, attention, flash_attn_available, resolve_backend

BACKENDS = ["sdpa", "flex"]


def qkv(b=2, h=3, n=13, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, n, d, generator=g, requires_grad=True) for _ in range(3)]


def padding(b=2, n=13):
    m = torch.ones(b, n, dtype=torch.bool)
    m[1, 9:] = False
    return m


CASES = {
    "plain": dict(),
    "padding": dict(mask=padding()),
    "window": dict(window=3),
    "window+padding": dict(window=4, mask=padding()),
    "causal": dict(causal=True),
    "causal+padding": dict(causal=True, mask=padding()),
    "dense": dict(mask=torch.rand(2, 1, 13, 13, generator=torch.Generator().manual_seed(3)) > 0.3),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_backend_matches_math(backend, case):
    q, k, v = qkv()
    kw = CASES[case]
    ref = attention(q, k, v, backend="math", **kw)
    if backend == "flex":  # flex has no CPU backward: compare forward only
        with torch.no_grad():
            torch.testing.assert_close(attention(q, k, v, backend=backend, **kw), ref, atol=1e-5, rtol=1e-4)
        return
    out = attention(q, k, v, backend=backend, **kw)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    g_ref = torch.autograd.grad(ref.square().sum(), (q, k, v))
    g_out = torch.autograd.grad(out.square().sum(), (q, k, v))
    for a, b in zip(g_out, g_ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("backend", ["math", "sdpa", "flex"])
def test_fully_padded_rows_are_zero_not_nan(backend):
    q, k, v = qkv()
    if backend == "flex":
        q, k, v = (t.detach() for t in (q, k, v))
    mask = padding()
    mask[0] = False  # batch row 0 has no key at all
    out = attention(q, k, v, mask=mask, backend=backend)
    assert torch.isfinite(out).all()
    assert torch.equal(out[0], torch.zeros_like(out[0]))
    if backend != "flex":
        grads = torch.autograd.grad(out.sum(), (q, k, v))
        assert all(torch.isfinite(g).all() for g in grads)
    dense = torch.ones(2, 1, 13, 13, dtype=torch.bool)
    dense[:, :, 4] = False  # query 4 sees nothing
    out = attention(q, k, v, mask=dense, backend=backend)
    assert torch.isfinite(out).all() and torch.equal(out[:, :, 4], torch.zeros_like(out[:, :, 4]))


@pytest.mark.parametrize("backend", ["math", "sdpa", "flex"])
def test_padded_keys_never_influence(backend):
    q, k, v = (t.detach() for t in qkv())
    mask = padding()
    out1 = attention(q, k, v, mask=mask, backend=backend)
    k2, v2 = k.detach().clone(), v.detach().clone()
    k2[1, :, 9:] = 1e4 * torch.randn_like(k2[1, :, 9:])
    v2[1, :, 9:] = float("nan")
    out2 = attention(q, k2, v2.nan_to_num(123.0), mask=mask, backend=backend)
    torch.testing.assert_close(out1, out2)


def test_cross_attention_shapes_and_auto():
    q = torch.randn(2, 2, 5, 8)
    k = v = torch.randn(2, 2, 7, 8)
    m = torch.ones(2, 7, dtype=torch.bool)
    m[0, 3:] = False
    torch.testing.assert_close(attention(q, k, v, mask=m), attention(q, k, v, mask=m, backend="math"))
    assert resolve_backend("auto", q, m) == "sdpa"  # CPU: fused SDPA


def test_errors_are_clear():
    q, k, v = qkv()
    with pytest.raises(BackendUnavailableError, match="no backward on CPU"):
        attention(q, k, v, backend="flex")
    with pytest.raises(ValueError, match="unknown backend 'fast'"):
        attention(q, k, v, backend="fast")
    with pytest.raises(ValueError, match="key-padding mask"):
        attention(q, k, v, mask=torch.ones(2, 12, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        attention(q, k, v, mask=torch.ones(2, 13))
    if not (flash_attn_available() and torch.cuda.is_available()):
        with pytest.raises(BackendUnavailableError, match="flash"):
            attention(q, k, v, backend="flash")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("backend", ["sdpa", "flex", "flash", "auto"])
def test_gpu_backends_match_math(backend):
    if backend == "flash" and not flash_attn_available():
        pytest.skip("flash-attn not installed")
    q, k, v = (t.detach().cuda().bfloat16() for t in qkv(n=300, d=64))
    mask = torch.ones(2, 300, dtype=torch.bool, device="cuda")
    mask[1, 200:] = False
    ref = attention(q.float(), k.float(), v.float(), mask=mask, backend="math")
    out = attention(q, k, v, mask=mask, backend=backend)
    torch.testing.assert_close(out.float()[0], ref[0], atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(out.float()[1, :, :200], ref[1, :, :200], atol=3e-2, rtol=3e-2)


def test_long_windowed_sequences_run_blockwise_and_match_the_dense_path():
    q, k, v = qkv(n=70)
    mask = padding(n=70)
    ref = attention(q, k, v, backend="math", window=3, mask=mask)  # 70 > 8 * 3: the blockwise path
    torch.testing.assert_close(attention(q, k, v, backend="sdpa", window=3, mask=mask), ref, atol=1e-5, rtol=1e-4)
