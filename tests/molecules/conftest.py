"""Shared fixtures for the molecules tests (small files written to tmp_path; nothing downloaded)."""

from __future__ import annotations

import pytest

pytest.importorskip("rdkit")
