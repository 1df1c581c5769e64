"""Tokenizer round trips and masks; task masks."""

import pytest
import torch

from ditkit_geo.data import SITSDataset
from ditkit_geo.series import Normalizer
from ditkit_geo.synthetic import make_synthetic
from ditkit_geo.tasks import sample_given
from ditkit_geo.tokenizer import SITSTokenizer


@pytest.fixture(scope="module")
def batch():
    d = make_synthetic(4, size=16, t=6, seed=0)
    return SITSDataset(Normalizer.fit(d).apply(d)).batch([0, 1, 2, 3])


@pytest.mark.parametrize("patch", [1, 4, 8])
def test_round_trip_exact(batch, patch):
    tok = SITSTokenizer("synthetic", patch=patch)
    tb = tok.encode(batch)
    n = 6 * 5 * (16 // patch) ** 2
    assert tb.x.shape == (4, n, 3 * patch * patch) and tok.token_dim == 3 * patch * patch
    assert tb.pos.shape == (4, n, 3) and tb.meta["features"].shape == (4, n, 5 + 4)
    torch.testing.assert_close(tok.decode(tb)["values"], batch["values"], atol=0, rtol=0)


@pytest.mark.parametrize("level", ["median", "median_mad"])
def test_level_normalisation_round_trips_and_centres_on_the_given_median(batch, level):
    tok = SITSTokenizer("synthetic", patch=4, level=level)
    tb = tok.encode(batch)
    torch.testing.assert_close(tok.decode(tb)["values"], batch["values"], atol=1e-5, rtol=0)
    # the given values of one pixel / band are centred: their median over dates is 0
    given = tb.meta["given"]
    cond = tok._to_cube(tb.meta["cond"], 6, 16, 16)
    g = tok._to_cube(given.float(), 6, 16, 16) > 0.5
    med = torch.where(g, cond, torch.full_like(cond, float("nan"))).nanmedian(1).values
    assert torch.nan_to_num(med).abs().max() < 1e-5
    assert (tb.meta["cond"][~given] == 0).all()
    # a constant offset leaves the normalised tokens unchanged wherever a pixel / band has a given date
    shifted = {**batch, "values": batch["values"] + 3.0, "observed": batch["observed"] + 3.0}
    has_level = tok._to_tokens(g.any(1, keepdim=True).expand_as(g).float()) > 0.5
    assert has_level.float().mean() > 0.5
    torch.testing.assert_close(tok.encode(shifted).x[has_level], tb.x[has_level], atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="level='mean'"):
        SITSTokenizer("synthetic", level="mean")


def test_location_features(batch):
    tok = SITSTokenizer("synthetic", patch=8, location=True)
    latlon = torch.tensor([[0.0, 0.0], [90.0, 10.0], [45.0, -90.0], [-30.0, 180.0]])
    f = tok.encode({**batch, "latlon": latlon}).meta["features"]
    assert f.shape[-1] == tok.feature_dim == 5 + 4 + 3
    unit = f[:, 0, -3:]
    torch.testing.assert_close(unit.norm(dim=-1), torch.ones(4))
    torch.testing.assert_close(unit[0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(unit[2], torch.tensor([0.0, -(0.5**0.5), 0.5**0.5]), atol=1e-6, rtol=0)
    assert (f[:, :, -3:] == unit[:, None]).all()  # the same for every token of a series
    with pytest.raises(ValueError, match="needs finite latlon"):
        tok.encode(batch)


def test_masks_padding_and_nodata_are_never_targets(batch):
    tok = SITSTokenizer("synthetic", patch=4)
    values = batch["values"].clone()
    values[0, 2, 5] = float("nan")  # no-data
    tb = tok.encode({**batch, "values": values})
    target = ~tb.known_mask
    # NIR / SWIR / SAR groups have 2 bands: the third slot of their tokens is padding
    width = tok.patch**2
    groups = tb.x.reshape(4, 6, 5, 16, -1)  # [b, t, g, patches, d]
    assert not target.reshape_as(groups)[:, :, 2:, :, 2 * width :].any()
    assert (groups[:, :, 2:, :, 2 * width :] == 0).all()
    # entries given (observed) are not targets; unobserved (cloudy) valid ones are
    assert not (target & tb.meta["given"]).any()
    back = tok._to_cube(target.float(), 6, 16, 16) > 0.5
    expect = torch.isfinite(values) & ~torch.isfinite(batch["observed"])
    assert torch.equal(back, expect)


def test_errors_name_the_problem(batch):
    with pytest.raises(ValueError, match="not divisible by patch=5"):
        SITSTokenizer("synthetic", patch=5).encode(batch)
    with pytest.raises(ValueError, match="got 12 channels, the groups define 2"):
        SITSTokenizer({"a": ["VV", "VH"]}, patch=4).encode(batch)
    with pytest.raises(ValueError, match="unknown preset"):
        SITSTokenizer("sentinel9")
    with pytest.raises(ValueError, match="static_groups: unknown groups"):
        SITSTokenizer("synthetic", static_groups=["DEM"])


def test_task_masks():
    tok = SITSTokenizer("presto", patch=1)
    g = torch.Generator().manual_seed(0)
    ok = torch.rand(64, 12, 18, 1, 1, generator=g) > 0.1
    static = tok.group_channel_mask(tok.static_names)
    optical = tok.group_channel_mask(tok.optical_names)
    for task in ("reconstruct", "forecast", "cloud", "random"):
        given, names = sample_given(ok, tok.channel_group, static, optical, probs={task: 1.0}, generator=g)
        assert set(names) == {task}
        assert not (given & ~ok).any()  # never gives what was not observed
        assert torch.equal(given[:, :, static], ok[:, :, static])  # static groups always given
        hidden = ok & ~given
        assert hidden.any()
        if task == "forecast":  # hidden dates form a suffix
            d = hidden.flatten(2).any(-1)
            assert (d.int().diff(dim=1) >= 0).all()
        if task == "cloud":
            assert not hidden[:, :, ~optical].any()
