"""Audio-video tokens: exact round trip, packed layout, shared time axis in seconds."""

import pytest
import torch

from ditkit_audio.av.tokenizer import AVTokenizer
from ditkit_core.testing import check_tokenizer_round_trip


def raw(tok, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    video = torch.randint(0, 256, (b, tok.frames, tok.size, tok.size, 3), generator=g, dtype=torch.uint8)
    mel = torch.randn(b, tok.audio_frames, tok.n_mels, generator=g) * 2 - 6
    return {"video": video, "mel": mel}


def test_round_trip_is_exact():
    tok = AVTokenizer(size=16, fps=8, seconds=1.0, tubelet=(2, 4, 4))
    r = raw(tok)

    def compare(a, b):
        torch.testing.assert_close(b["video"], a["video"].float() / 255, atol=1e-6, rtol=0)
        torch.testing.assert_close(b["mel"], a["mel"], atol=1e-5, rtol=0)

    check_tokenizer_round_trip(tok, r, compare=compare)


def test_streams_sit_in_their_own_tokens_and_channels():
    tok = AVTokenizer(size=16, fps=8, seconds=1.0, tubelet=(2, 8, 8))
    tb = tok.encode(raw(tok))
    nv, na = tok.video_tokens, tok.audio_tokens
    assert (nv, na) == (4 * 2 * 2, 40) and tb.x.shape == (2, nv + na, tok.video_dim + tok.audio_dim)
    assert bool((tb.x[:, :nv, tok.video_dim :] == 0).all()) and bool((tb.x[:, nv:, : tok.video_dim] == 0).all())
    assert bool((tb.known_mask == ~tok.channel_mask(2)).all())  # only the padding channels are "known"
    v, a = tok.unpack(tb.x)
    torch.testing.assert_close(tok.pack(v, a), tb.x)


def test_time_axis_is_seconds_on_both_streams():
    tok = AVTokenizer(fps=16, tubelet=(1, 8, 8))  # one frame per video token: centre at k / 16 s
    pos = tok.positions()[0]
    nv, grid = tok.video_tokens, tok.grid
    t_video = pos[:nv, 0].reshape(grid)[:, 0, 0] / tok.time_unit
    t_audio = pos[nv:, 0] / tok.time_unit
    torch.testing.assert_close(t_video[4], t_audio[10])  # 0.25 s: video frame 4 at 16 fps, audio frame 10 at 40 Hz
    assert float(t_video[4]) == pytest.approx(0.25)
    assert bool((pos[nv:, 1] == (grid[1] - 1) / 2).all())  # audio sits at the centre of the patch grid


def test_bad_inputs_are_named():
    tok = AVTokenizer(size=16, fps=8, seconds=1.0)
    r = raw(tok)
    with pytest.raises(ValueError, match="video must be"):
        tok.encode({**r, "video": r["video"][:, :3]})
    with pytest.raises(ValueError, match="mel must be"):
        tok.encode({**r, "mel": r["mel"][:, :5]})
    with pytest.raises(KeyError, match="mel"):
        tok.encode({"video": r["video"]})
    with pytest.raises(ValueError, match="tubelet"):
        AVTokenizer(size=16, fps=8, seconds=1.0, tubelet=(3, 8, 8))
