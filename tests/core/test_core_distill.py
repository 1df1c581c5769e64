"""Few-step students: a shortcut student at 1-2 steps beats its teacher at 1-2 steps, a reflow student straightens
the teacher's couplings, and the step embedding starts at zero (the student starts as the teacher)."""

import lightning as L
import pytest
import torch

from ditkit_core.examples.toy2d import Toy2DDataModule, Toy2DModule, sample_points
from ditkit_core.lightning import FewStepDistillation, OptimConfig, SamplerConfig, build_student
from ditkit_core.metrics import energy_distance
from ditkit_core.nn import DiTConfig
from ditkit_core.sampling import sample
from ditkit_core.tokenizers import IdentityTokenizer, TokenBatch


def fit(module: L.LightningModule, root, datamodule=None, **trainer) -> None:
    """Train on CPU without logger, checkpoints, progress bar or summary."""
    L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        **trainer,
    ).fit(module, datamodule)


@pytest.fixture(scope="module")
def trained_teacher(tmp_path_factory) -> tuple[Toy2DModule, Toy2DDataModule]:
    """The toy 2D teacher, trained once for both students (distillation freezes it and never changes it)."""
    tmp_path = tmp_path_factory.mktemp("teacher")
    torch.manual_seed(0)
    dm = Toy2DDataModule("gaussians8", points=16, train_sets=256, val_sets=8, batch_size=32, seed=1)
    m = Toy2DModule(
        IdentityTokenizer(2),
        DiTConfig(dim=64, depth=2, heads=4),
        optim=OptimConfig(lr=3e-3, warmup_steps=10),
        sampler=SamplerConfig(steps=16),
    )
    fit(m, tmp_path, dm, max_epochs=12, limit_val_batches=0)
    dm.setup("fit")
    return m.eval(), dm


def score(module, steps) -> float:
    ref = sample_points("gaussians8", 2048, torch.Generator().manual_seed(5))
    return float(energy_distance(module.sample_points(64, 16, seed=3, steps=steps), ref))


def test_student_starts_as_the_teacher_and_shortcut_distillation_beats_it_at_few_steps(trained_teacher, tmp_path):
    teacher, dm = trained_teacher
    student = build_student(teacher, step_conditioning=True, steps=1)
    x, t = torch.randn(3, 16, 2), torch.rand(3)
    torch.testing.assert_close(student.model(x, t), teacher.model(x, t))  # zero-initialised step embedding
    fewstep = FewStepDistillation(
        teacher, "shortcut", teacher_steps=16, student_steps=(1, 2), batches=8, lr=1e-3, warmup_steps=10, max_steps=300
    )
    fewstep.collect(dm.train_dataloader())
    fit(fewstep, tmp_path, max_steps=300)
    s = fewstep.student.eval()
    ceiling = score(teacher, 16)  # what the student imitates
    for steps in (1, 2):  # the student closes most of the gap between the teacher at few steps and at 16
        gap_student, gap_teacher = score(s, steps) - ceiling, score(teacher, steps) - ceiling
        assert gap_student < 0.5 * gap_teacher, (steps, ceiling, gap_student, gap_teacher)


def test_reflow_straightens_the_teacher_couplings(trained_teacher, tmp_path):
    teacher, dm = trained_teacher
    fewstep = FewStepDistillation(
        teacher, "reflow", teacher_steps=16, student_steps=(1,), batches=8, lr=1e-3, warmup_steps=10, max_steps=300
    )
    fewstep.collect(dm.train_dataloader())
    fit(fewstep, tmp_path, max_steps=300)
    tokens, states, _ = fewstep.store[0]
    x0, x1 = states[0], states[-1]

    def one_step_error(m):
        fn = lambda x, t: m.velocity(TokenBatch(x=x), x, t)  # noqa: E731
        return float((sample(fn, x0, steps=1) - x1).pow(2).mean())

    assert one_step_error(fewstep.student.eval()) < 0.5 * one_step_error(teacher)


def test_distill_command_writes_a_loadable_student_with_its_loss_log(tmp_path):
    """``python -m ditkit_core.lightning.distill`` from shipped weights: the student folder loads, samples in one
    Euler step without guidance, and carries the run's loss log."""
    import csv
    from pathlib import Path

    from ditkit_core.lightning import load_run
    from ditkit_core.lightning.distill import main

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "student"
    main(
        ["--config", str(root / "apps/toy2d/configs/default.yaml"), "--pretrained", str(root / "apps/toy2d/pretrained")]
        + ["--teacher-steps", "4", "--student-steps", "1", "2", "4", "--batches", "2", "--max-steps", "30"]
        + ["--out", str(out)]
    )
    student = load_run(pretrained=out / "pretrained")
    assert student.model.config.step_conditioning and student.model.dt_embed is not None
    assert (student.sampler.steps, student.sampler.method, student.sampler.cfg_scale) == (4, "euler", 1.0)
    assert student.sample_points(2, 8, steps=1).shape == (16, 2)
    with open(out / "pretrained" / "train_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and rows[-1]["step"] and float(rows[-1]["train/loss"]) > 0
