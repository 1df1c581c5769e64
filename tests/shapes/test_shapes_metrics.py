"""Chamfer / EMD against brute force, and MMD / COV / 1-NNA against direct loops and limiting cases."""

import itertools

import numpy as np
import pytest
import torch

from ditkit_shapes.metrics import chamfer, emd, evaluate_sets, mmd_cov, one_nna, pairwise_chamfer, pairwise_emd


def brute_chamfer(x, y):
    d = [[float(((a - b) ** 2).sum()) for b in y] for a in x]
    return np.mean([min(r) for r in d]) + np.mean([min(c) for c in zip(*d)])


def brute_emd(x, y):
    return min(
        np.mean([np.linalg.norm(x[i] - y[j]) for i, j in enumerate(p)]) for p in itertools.permutations(range(len(y)))
    )


def test_chamfer_matches_brute_force_and_limits():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(7, 3, generator=g), torch.randn(5, 3, generator=g)
    assert np.isclose(float(chamfer(x, y)), brute_chamfer(x.numpy(), y.numpy()), atol=1e-5)
    assert float(chamfer(x, x)) == pytest.approx(0, abs=1e-6)
    assert float(chamfer(x, y)) == pytest.approx(float(chamfer(y, x)), abs=1e-6)


def test_emd_exact_vs_permutations_and_translation():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    assert emd(x, y) == pytest.approx(brute_emd(x, y), abs=1e-9)
    assert emd(x, x) == pytest.approx(0, abs=1e-12)
    shift = np.array([0.3, -0.4, 0.0])  # the optimal matching of a small translation is the identity
    assert emd(x, x + shift) == pytest.approx(0.5, abs=1e-9)
    assert emd(x, rng.permutation(x)) == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        emd(x, y[:5])


def test_pairwise_matrices_match_single_calls():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(4, 8, 3, generator=g), torch.randn(3, 8, 3, generator=g)
    ref = torch.tensor([[float(chamfer(i, j)) for j in b] for i in a])
    torch.testing.assert_close(pairwise_chamfer(a, b, method="kdtree"), ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(pairwise_chamfer(a, b, max_elems=100, method="torch"), ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(pairwise_chamfer(a, a, symmetric=True), pairwise_chamfer(a, a), atol=1e-5, rtol=0)
    e = pairwise_emd(a, b)
    torch.testing.assert_close(e, torch.tensor([[emd(i, j) for j in b] for i in a]), atol=1e-5, rtol=0)


def brute_protocol(d_ss, d_rr, d_sr):
    ns, nr = len(d_ss), len(d_rr)
    mmd = np.mean([min(d_sr[s][r] for s in range(ns)) for r in range(nr)])
    cov = len({min(range(nr), key=lambda r: d_sr[s][r]) for s in range(ns)}) / nr
    correct = 0
    for i in range(ns + nr):
        best, label = np.inf, None
        for j in range(ns + nr):
            if i == j:
                continue
            dij = (
                d_ss[i][j]
                if i < ns and j < ns
                else d_rr[i - ns][j - ns]
                if i >= ns and j >= ns
                else d_sr[i][j - ns]
                if i < ns
                else d_sr[j][i - ns]
            )
            if dij < best:
                best, label = dij, j < ns
        correct += label == (i < ns)
    return mmd, cov, correct / (ns + nr)


def test_protocol_matches_direct_loops():
    g = torch.Generator().manual_seed(2)
    s, r = torch.randn(6, 10, 3, generator=g), torch.randn(5, 10, 3, generator=g) * 1.3
    d_ss, d_rr, d_sr = pairwise_chamfer(s, s), pairwise_chamfer(r, r), pairwise_chamfer(s, r)
    mmd, cov = mmd_cov(d_sr)
    b_mmd, b_cov, b_nna = brute_protocol(d_ss.numpy(), d_rr.numpy(), d_sr.numpy())
    assert mmd == pytest.approx(b_mmd, abs=1e-6) and cov == pytest.approx(b_cov)
    assert one_nna(d_ss, d_rr, d_sr) == pytest.approx(b_nna)


def test_limiting_cases():
    g = torch.Generator().manual_seed(3)
    ref = torch.randn(150, 16, 3, generator=g)
    same_dist = torch.randn(150, 16, 3, generator=g)
    out = evaluate_sets(same_dist, ref, metrics=("cd",))
    assert abs(out["1-NNA-CD"] - 0.5) < 0.1  # an independent sample of the same distribution: ~50 %
    far = evaluate_sets(ref + 10.0, ref, metrics=("cd",))
    assert far["1-NNA-CD"] == 1.0 and far["COV-CD"] < 0.2  # separable sets: 100 %, mode collapse onto few refs
    copy = evaluate_sets(ref[:20], ref[:20], metrics=("cd", "emd"), emd_points=None)
    assert copy["1-NNA-CD"] == 0.0 and copy["COV-CD"] == 1.0 and copy["MMD-CD"] == pytest.approx(0, abs=1e-6)
    assert copy["MMD-EMD"] == pytest.approx(0, abs=1e-6) and copy["1-NNA-EMD"] == 0.0


def test_evaluate_rejects_bad_input():
    with pytest.raises(ValueError, match=r"gen must be \[n, p, 3\]"):
        evaluate_sets(torch.zeros(3, 5, 2), torch.zeros(3, 5, 3))
    bad = torch.zeros(2, 5, 3)
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        evaluate_sets(torch.randn(2, 5, 3), bad)
