"""Error vs number of velocity evaluations (NFE) for each solver on a closed-form flow, next to the
`flow_matching` package's ODESolver on the same problem (when installed).

Problem: the exact marginal velocity of the linear path from N(0, I) to N(mu, s^2 I), whose flow maps x0 to
mu + s x0, so the error of a sample is known exactly. Also reports wall time per solve.

Usage: python benchmarks/solvers.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import emit  # noqa: E402

from ditkit_core.sampling import EVALS_PER_STEP, sample  # noqa: E402

MU, S = 2.0, 0.3


class Counted:
    def __init__(self):
        self.nfe = 0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        t = t.reshape(-1, *([1] * (x.dim() - 1))) if t.dim() else t
        var = (1 - t) ** 2 + t**2 * S**2
        return MU + ((t * S**2 - (1 - t)) / var) * (x - t * MU)


def main() -> None:
    torch.manual_seed(0)
    x0 = torch.randn(4096, 8, dtype=torch.float64)
    exact = MU + S * x0
    try:
        from flow_matching.solver import ODESolver
        from flow_matching.utils import ModelWrapper
    except ImportError:
        ODESolver = None
    for method in ("euler", "midpoint", "heun", "rk4"):
        for nfe_target in (4, 8, 16, 32, 64):
            steps = max(1, nfe_target // EVALS_PER_STEP[method])
            f = Counted()
            t0 = time.perf_counter()
            x = sample(f, x0, steps=steps, method=method)
            dt = time.perf_counter() - t0
            rec = dict(
                bench="solvers",
                method=method,
                steps=steps,
                nfe=f.nfe,
                max_error=float((x - exact).abs().max()),
                ms=round(1000 * dt, 2),
            )
            peer_method = {"euler": "euler", "midpoint": "midpoint", "rk4": "rk4"}.get(method)
            if ODESolver is not None and peer_method is not None:
                g = Counted()

                class Wrapped(ModelWrapper):
                    def __init__(self, fn):
                        super().__init__(torch.nn.Identity())
                        self.fn = fn

                    def forward(self, x, t, **extras):
                        return self.fn(x, t.expand(x.shape[0]) if t.dim() == 0 else t)

                solver = ODESolver(velocity_model=Wrapped(g))
                t0 = time.perf_counter()
                y = solver.sample(
                    x_init=x0,
                    step_size=1.0 / steps,
                    method=peer_method,
                    time_grid=torch.tensor([0.0, 1.0], dtype=torch.float64),
                )
                pdt = time.perf_counter() - t0
                rec.update(
                    peer="flow_matching.ODESolver",
                    peer_nfe=g.nfe,
                    peer_max_error=float((y - exact).abs().max()),
                    peer_ms=round(1000 * pdt, 2),
                )
            emit(**rec)
    f = Counted()
    try:
        x = sample(f, x0, method="dopri5", atol=1e-6, rtol=1e-6)
        emit(bench="solvers", method="dopri5", nfe=f.nfe, max_error=float((x - exact).abs().max()))
    except ImportError as e:
        emit(bench="solvers", method="dopri5", skipped=str(e))


if __name__ == "__main__":
    main()
