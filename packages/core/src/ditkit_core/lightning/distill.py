"""Few-step students of any trained ditkit run: reflow and shortcut-style distillation on teacher trajectories.

The teacher (any :class:`~ditkit_core.lightning.FlowMatchingModule`, loaded with ``load_run``) samples trajectories
on batches of its own training data with its own solver, guidance and known values (``sampling_inputs``), once, at
the start of fitting. The student is the same module class with the same weights:

* ``shortcut`` (Frans et al. 2024 / consistency-style, distilled from the teacher's ODE): the student's DiT also
  embeds the solver's step size (``DiTConfig.step_conditioning``, zero-initialised, so it starts as the teacher) and
  learns, for every step count ``S`` in ``student_steps``, the average velocity ``(x(t_j) - x(t_i)) / (t_j - t_i)``
  over each of its ``S`` steps, read off the teacher's trajectory. One student serves all ``S``; guidance is baked
  in, so it samples with one evaluation per step (``cfg_scale = 1``).
* ``reflow`` (Liu et al. 2023, InstaFlow): the student is trained with the flow-matching loss on the teacher's
  couplings ``(x_0, x_1 = teacher(x_0))``, whose straight paths need few Euler steps.

Known entries and padding are excluded from the loss, as in training. At the end the student is written as a
pretrained folder of the domain module (``export_run``: weights, config and its loss log ``train_log.csv``), so
every app's ``sample`` / ``eval`` loads it with ``--pretrained`` and ``--steps S``.

    python -m ditkit_core.lightning.distill --config apps/<app>/configs/default.yaml --method shortcut \\
        --student-steps 1 2 4 --max-steps 2000 --out outputs/<app>/student
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from tqdm.auto import tqdm

from ditkit_core.flow import masked_mse
from ditkit_core.lightning.config import plain
from ditkit_core.lightning.module import FlowMatchingModule, warmup_cosine
from ditkit_core.nn.config import ConfigError
from ditkit_core.sampling.protocol import step_size
from ditkit_core.sampling.solvers import time_grid
from ditkit_core.tokenizers import TokenBatch

METHODS = ("shortcut", "reflow")


def build_student(teacher: FlowMatchingModule, step_conditioning: bool, steps: int) -> FlowMatchingModule:
    """The teacher's module class with the teacher's weights (plus a zero step embedding), sampling in ``steps``
    Euler steps without guidance on the teacher's time schedule."""
    hp = copy.deepcopy(plain(dict(teacher.hparams)))
    hp["model"] = {**hp["model"], "step_conditioning": step_conditioning}
    hp["sampler"] = {
        **(hp.get("sampler") or {}),
        "steps": steps,
        "method": "euler",
        "cfg_scale": 1.0,
        "cache": {"kind": "none"},
    }
    student = type(teacher)(**hp)
    missing, unexpected = student.load_state_dict(teacher.state_dict(), strict=False)
    bad = [k for k in missing if ".dt_embed." not in k] + list(unexpected)
    if bad:
        raise RuntimeError(f"build_student: teacher weights do not fit the student: {bad[:8]}")
    return student


class FewStepDistillation(L.LightningModule):
    """Trains a few-step student of ``teacher`` (see the module docstring).

    Args:
        teacher: the trained flow module (kept frozen).
        method: ``shortcut`` or ``reflow``.
        teacher_steps: solver steps of the teacher's trajectories (a multiple of every student step count).
        student_steps: the step counts the student serves (``shortcut``) or is meant for (``reflow``).
        batches: training batches the teacher samples trajectories for.
        lr, warmup_steps, max_steps: AdamW with warm-up and cosine decay over ``max_steps``.
        seed: seed of trajectories and segment draws.
    """

    def __init__(
        self,
        teacher: FlowMatchingModule,
        method: str = "shortcut",
        teacher_steps: int = 32,
        student_steps: tuple[int, ...] = (1, 2, 4),
        batches: int = 64,
        lr: float = 1e-4,
        warmup_steps: int = 50,
        max_steps: int = 2000,
        seed: int = 0,
    ):
        super().__init__()
        if method not in METHODS:
            raise ConfigError(f"FewStepDistillation.method={method!r}: must be one of {METHODS}")
        student_steps = tuple(int(s) for s in student_steps)
        if not student_steps or any(s < 1 or teacher_steps % s for s in student_steps):
            raise ConfigError(
                f"FewStepDistillation.student_steps={student_steps}: each must divide teacher_steps={teacher_steps}"
            )
        if batches < 1 or max_steps < 1 or lr <= 0:
            raise ConfigError(f"FewStepDistillation: batches={batches}, max_steps={max_steps}, lr={lr} must be > 0")
        self.save_hyperparameters(ignore=["teacher"])
        self.teacher = teacher.eval().requires_grad_(False)
        self.method, self.teacher_steps, self.student_steps = method, teacher_steps, student_steps
        self.batches, self.lr, self.warmup_steps, self.max_steps, self.seed = batches, lr, warmup_steps, max_steps, seed
        self.student = build_student(teacher, method == "shortcut", max(student_steps))
        self.store: list[tuple[TokenBatch, Tensor, Tensor]] = []  # tokens, states [K+1, b, n, d], times [K+1]

    # ------------------------------------------------------------------ teacher trajectories
    @torch.no_grad()
    def collect(self, loader: Any) -> None:
        """Sample the teacher on the first ``batches`` batches of ``loader``; keep the states at the student grid."""
        t = self.teacher
        s = t.sampler
        k_max = max(self.student_steps)
        every = self.teacher_steps // k_max
        grid = time_grid(self.teacher_steps, s.schedule, shift=s.shift, sway=s.sway)[::every]  # [k_max + 1]
        self.store = []
        it = iter(loader)
        for k in tqdm(range(self.batches), desc=f"teacher trajectories ({self.teacher_steps} steps)"):
            try:
                batch = next(it)
            except StopIteration:
                it = iter(loader)
                batch = next(it)
            batch = _to(batch, self.device)
            tokens = t.tokenize(batch)
            g = torch.Generator(device=self.device).manual_seed(self.seed * 1_000_003 + k)
            _, traj = t.generate(
                tokens,
                steps=self.teacher_steps,
                method="euler",
                generator=g,
                return_trajectory=True,
                **t.sampling_inputs(tokens),
            )
            states = torch.stack(traj[::every])  # [k_max + 1, b, n, d]
            self.store.append((_to(tokens, "cpu"), states.cpu(), grid.clone()))

    def on_fit_start(self) -> None:
        if not self.store:
            raise RuntimeError("FewStepDistillation: call collect(app_train_loader) before fit")

    def train_dataloader(self) -> Any:  # one index per step; the data are the stored trajectories
        return torch.utils.data.DataLoader(range(self.max_steps), batch_size=None)

    # ------------------------------------------------------------------ training
    def training_step(self, index: Any, batch_idx: int) -> Tensor:
        tokens, states, times = self.store[int(self.global_step) % len(self.store)]
        tokens, states, times = _to(tokens, self.device), states.to(self.device), times.to(self.device)
        g = torch.Generator(device=self.device).manual_seed(self.seed * 7919 + int(self.global_step))
        b = states.shape[1]
        st = self.student
        mask = tokens.mask
        if tokens.known_mask is not None:
            known = tokens.known_mask if tokens.known_mask.shape == tokens.x.shape else tokens.known_mask[..., None]
            real = torch.ones_like(tokens.x, dtype=torch.bool) if mask is None else mask[..., None].expand_as(tokens.x)
            mask = real & ~known.expand_as(tokens.x)
        cond = st.condition(tokens, None)
        if self.method == "reflow":
            x0, x1 = states[0], states[-1]
            t = st.time_sampler(b, device=self.device, generator=g)
            x_t = (1 - t)[:, None, None] * x0 + t[:, None, None] * x1
            v = st.velocity(cond, x_t, t)
            loss = masked_mse(v, x1 - x0, mask)
        else:
            k_max = states.shape[0] - 1
            choice = torch.tensor(self.student_steps, device=self.device)[
                torch.randint(len(self.student_steps), (b,), generator=g, device=self.device)
            ]  # S per sample
            length = k_max // choice  # grid points per student step
            start = torch.floor(torch.rand(b, generator=g, device=self.device) * choice).long() * length
            end = start + length
            ar = torch.arange(b, device=self.device)
            x_i, x_j = states[start, ar], states[end, ar]
            t_i, dt = times[start], times[end] - times[start]
            with step_size(dt):
                v = st.velocity(cond, x_i, t_i)
            loss = masked_mse(v, (x_j - x_i) / dt[:, None, None], mask)
        self.log("train/loss", loss, prog_bar=True, batch_size=b)
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        opt = torch.optim.AdamW(
            [p for p in self.student.parameters() if p.requires_grad], lr=self.lr, betas=tuple(self.teacher.optim.betas)
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(self.warmup_steps, self.max_steps, 0.1))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _to(obj: Any, device: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, TokenBatch):
        return obj.to(device).replace(meta=_to(obj.meta, device))
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(v, device) for v in obj)
    return obj


def main(argv: list[str] | None = None) -> None:
    from ditkit_core.lightning.cli import FlowCLI
    from ditkit_core.lightning.load import default_checkpoint, load_run
    from ditkit_core.lightning.pretrained import export_run

    ap = argparse.ArgumentParser(
        prog="python -m ditkit_core.lightning.distill", description="Train a few-step student of a trained ditkit run."
    )
    ap.add_argument("--config", required=True, help="the app YAML the teacher was trained with (data section used)")
    ap.add_argument("--ckpt", help="teacher checkpoint (default: <default_root_dir>/checkpoints/last.ckpt)")
    ap.add_argument("--pretrained", help="teacher pretrained folder (instead of --ckpt)")
    ap.add_argument("--method", choices=METHODS, default="shortcut", help="distillation method")
    ap.add_argument("--teacher-steps", type=int, default=32, help="teacher solver steps per trajectory")
    ap.add_argument("--student-steps", type=int, nargs="+", default=[1, 2, 4], help="student step counts")
    ap.add_argument("--batches", type=int, default=64, help="training batches the teacher samples")
    ap.add_argument("--max-steps", type=int, default=2000, help="student optimisation steps")
    ap.add_argument("--lr", type=float, default=1e-4, help="peak learning rate")
    ap.add_argument("--seed", type=int, default=0, help="seed of trajectories and segments")
    ap.add_argument("--out", required=True, help="folder of the student (pretrained format) and its logs")
    a = ap.parse_args(argv)
    ckpt = None if a.pretrained else (a.ckpt or default_checkpoint(a.config))
    teacher = load_run(a.config, ckpt=ckpt, pretrained=a.pretrained)
    cli = FlowCLI(args=["--config", a.config, "--trainer.default_root_dir", a.out], run=False)
    L.seed_everything(a.seed, workers=True)
    module = FewStepDistillation(
        teacher, a.method, a.teacher_steps, tuple(a.student_steps), a.batches, a.lr, max_steps=a.max_steps, seed=a.seed
    )
    out = Path(a.out)
    trainer = L.Trainer(
        accelerator="auto",
        devices=1,
        max_steps=a.max_steps,
        default_root_dir=out,
        gradient_clip_val=1.0,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        logger=L.pytorch.loggers.CSVLogger(out, name="logs"),
        log_every_n_steps=25,
    )
    dm = cli.datamodule
    dm.prepare_data()
    dm.setup("fit")
    module.collect(dm.train_dataloader())
    trainer.fit(module)
    log = Path(trainer.logger.log_dir) / "metrics.csv"
    path = export_run(module.student.cpu().eval(), out / "pretrained", [log] if log.exists() else None)
    print(f"[distill] wrote the {a.method} student to {path} (sample it with --pretrained {path} --steps S)")


__all__ = ["FewStepDistillation", "build_student", "main"]

if __name__ == "__main__":
    main()
