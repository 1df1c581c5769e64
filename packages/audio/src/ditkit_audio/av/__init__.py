"""Joint audio-video flow matching (app ``audio_video``): one core JointDiT over video tubelets and log-mel frames.

Modules: :mod:`.synthetic` (procedural clips with known truth), :mod:`.store` (checked clip files), :mod:`.media`
(PyAV reading / writing of .mp4, folders of real files), :mod:`.data` (DataModule), :mod:`.tokenizer` (packed
tokens, RoPE time in seconds), :mod:`.model` (joint network, AV-DiT adapters), :mod:`.module` (Lightning module,
tasks, per-stream guidance), :mod:`.metrics` (blob tracking, onsets, synchrony, pitch, distributions),
:mod:`.encoder` (feature network for Frechet distances), :mod:`.viz` (contact sheets), :mod:`.evaluate` and
:mod:`.cli` (``make data-av / train-av / sample-av / eval-av``).
"""
