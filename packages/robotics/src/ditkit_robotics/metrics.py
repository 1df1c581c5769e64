"""Policy metrics: action-chunk error and the per-task success table."""

from __future__ import annotations

from typing import Any

from torch import Tensor


def chunk_mse(pred: Tensor, target: Tensor, n_action_steps: int | None = None) -> Tensor:
    """Mean squared error over the executed prefix of action chunks ``[b, horizon, action_dim]``."""
    if pred.shape != target.shape:
        raise ValueError(f"chunk_mse: shapes differ, {tuple(pred.shape)} vs {tuple(target.shape)}")
    k = n_action_steps or pred.shape[1]
    return (pred[:, :k] - target[:, :k]).pow(2).mean()


def success_table(result: dict[str, Any]) -> str:
    """Markdown table ``task | policy | scripted expert | crashed | steps | ms/chunk`` with a mean row."""
    lines = [
        "| task | policy success | scripted expert (ceiling) | crashed steps | mean steps | ms/chunk |",
        "|---|---|---|---|---|---|",
    ]
    for task, r in result["tasks"].items():
        ex = f"{r['expert_success']:.2f}" if "expert_success" in r else "-"
        lines.append(
            f"| {task} | {r['success']:.2f} | {ex} | {r['crashed']} | {r['steps']:.0f} | {r['chunk_ms']:.1f} |"
        )
    rows = list(result["tasks"].values())
    mean = sum(r["success"] for r in rows) / max(1, len(rows))
    ex_rows = [r["expert_success"] for r in rows if "expert_success" in r]
    ex = f"{sum(ex_rows) / len(ex_rows):.2f}" if ex_rows else "-"
    lines.append(f"| **mean** | **{mean:.2f}** | {ex} | {sum(r['crashed'] for r in rows)} | | |")
    return "\n".join(lines)
