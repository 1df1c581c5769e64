"""Suite-wide guards: every test starts with gradients enabled, whatever an earlier test left behind."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _grad_mode_is_restored():
    yield
    leaked = not torch.is_grad_enabled()
    torch.set_grad_enabled(True)
    assert not leaked, "this test left torch's grad mode disabled (use `with torch.no_grad()`)"
