# tts: flow-matching DiT text-to-speech (packages/audio). Included by the root Makefile.
.PHONY: data-tts train-tts sample-tts train-asr-probe eval-tts bench-tts

TTS_DATA ?= outputs/tts/data
TTS_N ?= 2000
TTS_CKPT ?= outputs/tts/checkpoints/last.ckpt
TEXT ?= The old farmer paints the red boat today. Did the child sleep?
PROMPT ?=
PROMPT_TEXT ?=
STEPS ?= 16

data-tts: ## synthesise the embedded espeak-ng corpus (LJSpeech layout, TTS_N=2000 sentences) into outputs/tts/data
	$(PY) -m ditkit_audio.cli data --out $(TTS_DATA) --n $(TTS_N)

train-tts: ## train the TTS DiT on the embedded corpus (CPU, ~8 min); wavs + mel PNGs in outputs/tts/samples
	@test -f $(TTS_DATA)/metadata.csv || $(MAKE) data-tts
	$(PY) -m ditkit_core.lightning.cli fit --config apps/tts/configs/default.yaml

sample-tts: ## speak TEXT="..." [PROMPT=ref.wav PROMPT_TEXT="..."] [STEPS=16] -> outputs/tts/sample.wav
	$(PY) -m ditkit_audio.cli sample --ckpt $(TTS_CKPT) --text "$(TEXT)" --steps $(STEPS) --out outputs/tts/sample.wav \
		$(if $(PROMPT),--prompt "$(PROMPT)" --prompt-text "$(PROMPT_TEXT)")

train-asr-probe: ## train the CTC recogniser used for CER/WER on the ground-truth corpus (CPU, ~3 min)
	@test -f $(TTS_DATA)/metadata.csv || $(MAKE) data-tts
	$(PY) -m ditkit_audio.cli train-asr --data $(TTS_DATA) --out outputs/tts/asr_probe

eval-tts: ## CER/WER (probe) vs ground truth, MCD-DTW, duration error (predictor vs heuristic), RTF -> JSON
	$(PY) -m ditkit_audio.cli eval --ckpt $(TTS_CKPT) --data $(TTS_DATA) --asr outputs/tts/asr_probe --steps $(STEPS)

bench-tts: ## benchmarks/tts.py: RTF at 16/32 steps and DiT step time vs a plain transformer (JSON lines)
	$(PY) benchmarks/tts.py
