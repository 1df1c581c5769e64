"""Validation media reach the loggers: ``SampleWriter`` sends PNGs as images and PCM WAVs as audio (TensorBoard), and
skips, with a warning, a WAV it cannot read; ``read_pcm_wav`` decodes PCM WAVs with the standard library."""

import struct
import wave
from pathlib import Path

import lightning as L
import numpy as np
import pytest

from ditkit_core.examples.toy2d import Toy2DDataModule, Toy2DModule
from ditkit_core.lightning import SampleWriter
from ditkit_core.lightning.callbacks import read_pcm_wav
from ditkit_core.nn import DiTConfig
from ditkit_core.tokenizers import IdentityTokenizer

RATE = 8000


def pcm(path: Path, samples: np.ndarray, width: int = 2, rate: int = RATE) -> Path:
    """Write integer ``samples`` ``[s]`` or ``[s, channels]`` as a PCM WAV of ``width`` bytes per sample."""
    frames = samples if samples.ndim == 2 else samples[:, None]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames.astype({1: np.uint8, 2: "<i2", 4: "<i4"}[width]).tobytes())
    return path


def float_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """A 32-bit float WAV (format code 3: not PCM)."""
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def tone(n: int = 800) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / RATE)


def test_read_pcm_wav_decodes_8_16_32_bit_and_averages_channels(tmp_path):
    x = tone()
    wav, rate = read_pcm_wav(pcm(tmp_path / "a.wav", np.round(x * 32767)))
    assert rate == RATE and wav.shape == (800,) and np.abs(wav.numpy() - x).max() < 1 / 32767
    wav, _ = read_pcm_wav(pcm(tmp_path / "b.wav", np.round(x * 2**31 - 1), width=4))
    assert np.abs(wav.numpy() - x).max() < 1e-6
    wav, _ = read_pcm_wav(pcm(tmp_path / "c.wav", np.array([0, 128, 255]), width=1))  # unsigned, centred on 128
    assert wav.tolist() == [-1.0, 0.0, 127 / 128]
    stereo = np.stack([np.full(4, 16384), np.full(4, -8192)], axis=1)
    assert read_pcm_wav(pcm(tmp_path / "d.wav", stereo))[0].tolist() == [0.125] * 4


def test_read_pcm_wav_names_the_file_it_refuses(tmp_path):
    with pytest.raises(ValueError, match=r"f\.wav: not a PCM WAV"):
        read_pcm_wav(float_wav(tmp_path / "f.wav", tone()))
    with pytest.raises(ValueError, match=r"w24\.wav: 24-bit samples"):
        with wave.open(str(tmp_path / "w24.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(3)
            w.setframerate(RATE)
            w.writeframes(bytes(6))
        read_pcm_wav(tmp_path / "w24.wav")
    with pytest.raises(ValueError, match=r"long\.wav: 800 frames at 8000 Hz \(at most 0\.05 s"):
        read_pcm_wav(pcm(tmp_path / "long.wav", np.zeros(800)), max_seconds=0.05)


class Speaking(Toy2DModule):
    """The toy module whose validation samples also include a tone (PCM) and a float WAV."""

    def write_samples(self, out_dir: Path, tag: str) -> list[Path]:
        paths = super().write_samples(out_dir, tag)
        return [*paths, pcm(out_dir / "tone.wav", np.round(tone() * 32767)), float_wav(out_dir / "float.wav", tone())]


def test_sample_writer_sends_images_and_audio_to_tensorboard_and_skips_a_float_wav(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    module = Speaking(tokenizer=IdentityTokenizer(2), model=DiTConfig(in_dim=2, dim=16, depth=1, heads=2))
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        log_every_n_steps=1,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=TensorBoardLogger(tmp_path, name="logs", version="tb"),
        callbacks=[SampleWriter()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    with pytest.warns(UserWarning, match=r"float\.wav not sent to the loggers as audio: .*not a PCM WAV"):
        trainer.fit(module, Toy2DDataModule("moons", points=8, train_sets=16, val_sets=4, batch_size=8))
    acc = EventAccumulator(str(tmp_path / "logs" / "tb"), size_guidance={"audio": 0, "images": 0}).Reload()
    assert acc.Tags()["audio"] == ["samples/tone"]  # the float WAV was skipped, the run went on
    (event,) = acc.Audio("samples/tone")
    assert event.step == trainer.global_step == 2 and event.sample_rate == RATE and event.length_frames == 800
    back, rate = read_pcm_wav(_write(tmp_path / "back.wav", event.encoded_audio_string))
    assert rate == RATE and np.abs(back.numpy() - tone()).max() < 2 / 32767  # TensorBoard stores 16-bit PCM
    pngs = sorted((tmp_path / "samples").glob("*.png"))
    assert pngs and sorted(acc.Tags()["images"]) == [f"samples/{p.stem}" for p in pngs]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
