"""One attention function over several backends.

Backends:

* ``math``: the reference. Materialises ``[b, h, n_q, n_k]`` scores; every other backend is tested against it.
* ``sdpa``: :func:`torch.nn.functional.scaled_dot_product_attention` (flash / memory-efficient / cuDNN kernels on
  GPU, the flash kernel on CPU). Key-padding masks are passed as a broadcast ``[b, 1, 1, n_k]`` view, never as
  ``[n, n]``. Local windows run blockwise (each block of ``w`` queries sees its own and the two neighbouring key
  blocks) so memory is ``O(n * w)``.
* ``flex``: :func:`torch.nn.attention.flex_attention` with a block mask built from padding, window and causal
  rules. Compile it from outside (``torch.compile``) for speed; eager flex is a reference.
* ``flash``: ``flash_attn.flash_attn_varlen_func`` on CUDA in fp16/bf16: padded tokens are removed and the
  batch is packed, so padding costs nothing.
* ``auto``: ``flash`` when it applies, else ``sdpa``.

Semantics shared by all backends: ``mask`` True means "may attend". A query row with no allowed key outputs
zeros (not NaN), and its gradient is zero. An additive ``bias [b|1, h|1, n_q, n_k]`` (pair features, relative
positions) is added to the logits on ``math``, ``sdpa`` and ``flex``; ``flash`` has no bias and says so.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

Backend = Literal["auto", "math", "sdpa", "flex", "flash"]
BACKENDS = ("auto", "math", "sdpa", "flex", "flash")
# Windowed attention runs blockwise only when n_q > this factor x window: below it one dense masked SDPA call is
# faster on CPU (measured crossover at 4-8 windows) and gives the same result.
DENSE_WINDOW_FACTOR = 8


class BackendUnavailableError(RuntimeError):
    """An attention backend was asked for explicitly but cannot run here."""


def flash_attn_available() -> bool:
    """Whether the ``flash_attn`` package is importable (it also needs CUDA tensors to run)."""
    return importlib.util.find_spec("flash_attn") is not None


def flex_available() -> bool:
    try:
        from torch.nn.attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


def _check_bias(q: Tensor, k: Tensor, bias: Tensor | None) -> None:
    if bias is None:
        return
    b, h, nq, _ = q.shape
    nk = k.shape[2]
    if (
        bias.dim() != 4
        or bias.shape[0] not in (1, b)
        or bias.shape[1] not in (1, h)
        or tuple(bias.shape[2:]) != (nq, nk)
    ):
        raise ValueError(
            f"attention: bias must be [b|1, h|1, n_q, n_k]=({b}|1, {h}|1, {nq}, {nk}), got {tuple(bias.shape)}"
        )
    if not bias.is_floating_point():
        raise TypeError(f"attention: bias must be floating point, got {bias.dtype}")


def _check_inputs(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            f"attention: q, k, v must be [b, h, n, d]; got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[1] != k.shape[1] or q.shape[3] != k.shape[3]:
        raise ValueError(f"attention: incompatible shapes q={tuple(q.shape)} k={tuple(k.shape)} v={tuple(v.shape)}")
    if mask is None:
        return
    if mask.dtype != torch.bool:
        raise TypeError(f"attention: mask must be bool (True = attend), got dtype {mask.dtype}")
    b, h, nq, _ = q.shape
    nk = k.shape[2]
    if mask.dim() == 2:
        if tuple(mask.shape) != (b, nk):
            raise ValueError(f"attention: key-padding mask must be [b, n_k]=({b}, {nk}), got {tuple(mask.shape)}")
    elif mask.dim() == 4:
        if mask.shape[0] != b or mask.shape[1] not in (1, h) or tuple(mask.shape[2:]) != (nq, nk):
            raise ValueError(
                f"attention: dense mask must be [b, 1 or h, n_q, n_k]=({b}, 1|{h}, {nq}, {nk}), got {tuple(mask.shape)}"
            )
    else:
        raise ValueError(f"attention: mask must be [b, n_k] or [b, 1|h, n_q, n_k], got {tuple(mask.shape)}")


def dense_mask(
    mask: Tensor | None,
    nq: int,
    nk: int,
    *,
    window: int | None = None,
    causal: bool = False,
    device: torch.device | None = None,
) -> Tensor | None:
    """Combine key padding / dense mask, window and causal rules into one ``[b|1, 1|h, n_q, n_k]`` bool mask.

    Used by the ``math`` reference (and for dense masks on ``sdpa``); materialises ``n_q * n_k`` booleans.
    """
    out = None
    if mask is not None:
        out = mask[:, None, None, :] if mask.dim() == 2 else mask
        device = mask.device
    if window is not None or causal:
        qi = torch.arange(nq, device=device)[:, None]
        kj = torch.arange(nk, device=device)[None, :]
        rule = torch.ones(nq, nk, dtype=torch.bool, device=device)
        if window is not None:
            rule = rule & ((qi - kj).abs() <= window)
        if causal:
            rule = rule & (kj <= qi)
        rule = rule[None, None]
        out = rule if out is None else out & rule
    return out


def _math(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor | None, scale: float, bias: Tensor | None = None) -> Tensor:
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * scale  # [b, h, n_q, n_k]
    if bias is not None:
        scores = scores + bias.to(scores.dtype)
    if allowed is None:
        return torch.einsum("bhqk,bhkd->bhqd", scores.softmax(-1), v)
    scores = scores.masked_fill(~allowed, float("-inf"))
    has_key = allowed.any(-1, keepdim=True)
    scores = scores.masked_fill(~has_key, 0.0)  # rows with no key: finite, zeroed below
    attn = scores.softmax(-1) * has_key
    return torch.einsum("bhqk,bhkd->bhqd", attn, v)


def _sdpa_dense(
    q: Tensor, k: Tensor, v: Tensor, allowed: Tensor | None, scale: float, bias: Tensor | None = None
) -> Tensor:
    if allowed is None:
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=None if bias is None else bias.to(q.dtype), scale=scale
        )
    has_key = allowed.any(-1, keepdim=True)  # [b, 1|h, n_q|1, 1]
    safe = allowed | ~has_key  # rows with no key attend everywhere (finite), then get zeroed
    if bias is not None:  # additive float mask: the bias where allowed, -inf elsewhere
        safe = bias.to(q.dtype).masked_fill(~safe, float("-inf"))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, scale=scale)
    return out * has_key.to(out.dtype) if not bool(has_key.all()) else out


def _local_blocked(
    q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None, window: int, causal: bool, scale: float
) -> Tensor:
    """Exact sliding-window attention ``|i - j| <= window`` in ``O(n * window)`` memory (self-attention)."""
    b, h, n, d = q.shape
    w = window
    nb = math.ceil(n / w)
    pad = nb * w - n
    if key_mask is None:
        key_mask = torch.ones(b, n, dtype=torch.bool, device=q.device)
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        key_mask = F.pad(key_mask, (0, pad), value=False)
    qb = rearrange(q, "b h (nb w) d -> b h nb w d", w=w)

    def neighbours(t: Tensor) -> Tensor:  # [b, h, nb, w, d] -> [b, h, nb, 3w, d]: previous, own, next block
        prev = F.pad(t, (0, 0, 0, 0, 1, 0))[:, :, :-1]
        nxt = F.pad(t, (0, 0, 0, 0, 0, 1))[:, :, 1:]
        return torch.cat([prev, t, nxt], dim=3)

    kb = neighbours(rearrange(k, "b h (nb w) d -> b h nb w d", w=w))
    vb = neighbours(rearrange(v, "b h (nb w) d -> b h nb w d", w=w))
    mb = rearrange(key_mask, "b (nb w) -> b nb w", w=w)
    mprev = F.pad(mb, (0, 0, 1, 0), value=False)[:, :-1]
    mnext = F.pad(mb, (0, 0, 0, 1), value=False)[:, 1:]
    kmask = torch.cat([mprev, mb, mnext], dim=2)  # [b, nb, 3w]
    qi = torch.arange(w, device=q.device)[:, None] + w  # query offsets inside the 3w key window
    kj = torch.arange(3 * w, device=q.device)[None, :]
    rule = (qi - kj).abs() <= w
    if causal:
        rule = rule & (kj <= qi)
    allowed = kmask[:, :, None, :] & rule  # [b, nb, w, 3w]
    out = _sdpa_dense(
        rearrange(qb, "b h nb w d -> (b nb) h w d"),
        rearrange(kb, "b h nb m d -> (b nb) h m d"),
        rearrange(vb, "b h nb m d -> (b nb) h m d"),
        rearrange(allowed, "b nb w m -> (b nb) 1 w m"),
        scale,
    )
    out = rearrange(out, "(b nb) h w d -> b h (nb w) d", b=b)
    return out[:, :, :n]


def _sdpa(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    window: int | None,
    causal: bool,
    scale: float,
    bias: Tensor | None = None,
) -> Tensor:
    nq, nk = q.shape[2], k.shape[2]
    if bias is not None:  # the bias is dense anyway: one dense call
        if mask is not None and mask.dim() == 2 and window is None and not causal:
            return _sdpa_dense(q, k, v, mask[:, None, None, :], scale, bias)
        allowed = dense_mask(mask, nq, nk, window=window, causal=causal, device=q.device)
        return _sdpa_dense(q, k, v, allowed, scale, bias)
    if window is not None and (mask is None or mask.dim() == 2):
        if nq != nk:
            raise ValueError("attention: window attention needs self-attention (n_q == n_k)")
        if nq > DENSE_WINDOW_FACTOR * window:  # long sequences: O(n * w) blocks; short ones: one dense masked call
            return _local_blocked(q, k, v, mask, window, causal, scale)
        return _sdpa_dense(q, k, v, dense_mask(mask, nq, nk, window=window, causal=causal, device=q.device), scale)
    if mask is None and window is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
    if mask is not None and mask.dim() == 2 and not causal:
        return _sdpa_dense(q, k, v, mask[:, None, None, :], scale)  # broadcast view, no [n, n] tensor
    return _sdpa_dense(q, k, v, dense_mask(mask, nq, nk, window=window, causal=causal, device=q.device), scale)


def _flex(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    window: int | None,
    causal: bool,
    scale: float,
    bias: Tensor | None = None,
) -> Tensor:
    if not flex_available():
        raise BackendUnavailableError("attention backend 'flex' needs torch>=2.5 (torch.nn.attention.flex_attention)")
    if q.device.type == "cpu" and torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
        raise BackendUnavailableError(
            "attention backend 'flex' has no backward on CPU (PyTorch limitation); "
            "use 'sdpa' for CPU training, or run flex under torch.no_grad()"
        )
    if q.device.type == "cpu":
        q, k, v = q.detach(), k.detach(), v.detach()
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    b, h, nq, _ = q.shape
    nk = k.shape[2]
    score_mod = None
    if bias is not None:
        bb = bias.to(q.dtype)
        b_one, h_one = bb.shape[0] == 1, bb.shape[1] == 1

        def score_mod(score, bi, hi, qi, kj):
            return score + bb[0 if b_one else bi, 0 if h_one else hi, qi, kj]

    if mask is None and window is None and not causal:
        return flex_attention(q, k, v, scale=scale, score_mod=score_mod)

    def mask_mod(bi, hi, qi, kj):
        ok = qi >= 0  # a True of the right shape
        if mask is not None:
            ok = ok & (mask[bi, kj] if mask.dim() == 2 else mask[bi, hi if mask.shape[1] > 1 else 0, qi, kj])
        if window is not None:
            ok = ok & ((qi - kj).abs() <= window)
        if causal:
            ok = ok & (kj <= qi)
        return ok

    per_head = mask is not None and mask.dim() == 4 and mask.shape[1] > 1
    block = create_block_mask(mask_mod, B=b, H=h if per_head else None, Q_LEN=nq, KV_LEN=nk, device=q.device)
    out = flex_attention(q, k, v, block_mask=block, scale=scale, score_mod=score_mod)
    return out


def _flash(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, window: int | None, causal: bool, scale: float
) -> Tensor:
    if not flash_attn_available():
        raise BackendUnavailableError(
            "attention backend 'flash' needs the flash-attn package: pip install 'ditkit-core[flash]' (CUDA only)"
        )
    if not q.is_cuda:
        raise BackendUnavailableError("attention backend 'flash' runs on CUDA tensors only")
    if q.dtype not in (torch.float16, torch.bfloat16):
        raise BackendUnavailableError(f"attention backend 'flash' needs fp16/bf16, got {q.dtype}")
    if mask is not None and mask.dim() == 4:
        raise BackendUnavailableError("attention backend 'flash' supports key-padding masks only, not dense masks")
    from flash_attn import flash_attn_varlen_func

    b, h, nq, d = q.shape
    nk = k.shape[2]
    qmask = mask if (mask is not None and nq == nk) else torch.ones(b, nq, dtype=torch.bool, device=q.device)
    kmask = mask if mask is not None else torch.ones(b, nk, dtype=torch.bool, device=q.device)

    def pack(t: Tensor, m: Tensor) -> tuple[Tensor, Tensor, Tensor, int]:
        tok = rearrange(t, "b h n d -> b n h d")[m]  # [total, h, d]
        lens = m.sum(-1, dtype=torch.int32)
        cu = F.pad(lens.cumsum(0, dtype=torch.int32), (1, 0))
        return tok, cu, lens, int(lens.max())

    qp, cuq, _, maxq = pack(q, qmask)
    kp, cuk, lk, maxk = pack(k, kmask)
    vp, _, _, _ = pack(v, kmask)
    ws = (window, window) if window is not None else (-1, -1)
    out_p = flash_attn_varlen_func(qp, kp, vp, cuq, cuk, maxq, maxk, softmax_scale=scale, causal=causal, window_size=ws)
    out = q.new_zeros(b, nq, h, d)
    out[qmask] = out_p
    out = rearrange(out, "b n h d -> b h n d")
    empty = lk == 0  # batch rows without any key: zeros
    return out * (~empty).to(out.dtype)[:, None, None, None] if bool(empty.any()) else out


def resolve_backend(backend: str, q: Tensor, mask: Tensor | None = None, bias: Tensor | None = None) -> str:
    """Return the concrete backend ``auto`` would run for these inputs (or validate an explicit one)."""
    if backend not in BACKENDS:
        raise ValueError(f"attention: unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend != "auto":
        return backend
    dense = (mask is not None and mask.dim() == 4) or bias is not None
    if q.is_cuda and flash_attn_available() and q.dtype in (torch.float16, torch.bfloat16) and not dense:
        return "flash"
    return "sdpa"


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    mask: Tensor | None = None,
    backend: Backend | str = "auto",
    window: int | None = None,
    causal: bool = False,
    scale: float | None = None,
    bias: Tensor | None = None,
) -> Tensor:
    """Scaled dot-product attention with masking, local windows and causal rules over selectable backends.

    Args:
        q: queries ``[b, h, n_q, d]``.
        k: keys ``[b, h, n_k, d]``.
        v: values ``[b, h, n_k, d]``.
        mask: bool, True = may attend. Either key padding ``[b, n_k]`` or dense ``[b, 1 or h, n_q, n_k]``.
        backend: ``auto``, ``math``, ``sdpa``, ``flex`` or ``flash``.
        window: if set, query ``i`` only sees keys ``j`` with ``|i - j| <= window`` (self-attention).
        causal: if True, query ``i`` only sees keys ``j <= i``.
        scale: softmax scale, default ``d ** -0.5``.
        bias: additive logit bias ``[b|1, h|1, n_q, n_k]`` (float); not on ``flash``.

    Returns:
        ``[b, h, n_q, d]``; rows with no allowed key are zeros.

    Raises:
        BackendUnavailableError: an explicitly requested backend cannot run on these inputs.
        ValueError / TypeError: malformed shapes, dtypes or backend name.
    """
    _check_inputs(q, k, v, mask)
    _check_bias(q, k, bias)
    if window is not None and (not isinstance(window, int) or window <= 0):
        raise ValueError(f"attention: window must be a positive int or None, got {window!r}")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    name = resolve_backend(backend, q, mask, bias)
    if name == "math":
        allowed = dense_mask(mask, q.shape[2], k.shape[2], window=window, causal=causal, device=q.device)
        return _math(q, k, v, allowed, scale, bias)
    if name == "sdpa":
        return _sdpa(q, k, v, mask, window, causal, scale, bias)
    if name == "flex":
        return _flex(q, k, v, mask, window, causal, scale, bias)
    if bias is not None:
        raise BackendUnavailableError(
            "attention backend 'flash' has no additive bias (pair features); use 'sdpa', 'flex' or 'auto'"
        )
    return _flash(q, k, v, mask, window, causal, scale)
