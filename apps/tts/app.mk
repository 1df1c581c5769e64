# tts: flow-matching DiT text-to-speech (packages/audio). Included by the root Makefile.
.PHONY: data-tts train-tts sample-tts train-asr-probe eval-tts bench-tts train-vocoder train-codec eval-codec train-tts-codec \
	data-tts-open data-asr-probe train-asr-probe-open eval-asr-probe-open train-tts-open eval-tts-open eval-tts-sentences train-vocoder-open

# TTS=open (default): train-tts / eval-tts / sample-tts / bench-tts use the open-vocabulary recipe (configs/open.yaml,
# shipped weights apps/tts/pretrained/open); TTS=corpus: the embedded-corpus recipe (configs/default.yaml).
TTS ?= open
TTS_CORPUS_CONFIG := apps/tts/configs/default.yaml
TTS_OPEN_CONFIG := apps/tts/configs/open.yaml
TTS_CONFIG ?= $(if $(filter open,$(TTS)),$(TTS_OPEN_CONFIG),$(TTS_CORPUS_CONFIG))
TTS_DATA ?= outputs/tts/data
TTS_N ?= 2000
TTS_CKPT ?=
TEXT ?= The old farmer paints the red boat today. Did the child sleep?
TEXT_FILE ?=
PROMPT ?=
PROMPT_TEXT ?=
VOICE ?=
SPEED ?= 1.0
STEPS ?= 16
VOCODER ?=
DRY_RUN ?=

data-tts: ## synthesise the embedded espeak-ng corpus (LJSpeech layout, TTS_N=2000 sentences) into outputs/tts/data
	$(PY) -m ditkit_audio.cli data --config $(TTS_CORPUS_CONFIG) --out $(TTS_DATA) --n $(TTS_N)

train-tts: ## train the TTS DiT: TTS=open (default) the open recipe (= train-tts-open, ~55 min); TTS=corpus the embedded corpus (4500 steps, ~25 min); wavs + mel PNGs in <run>/samples
ifeq ($(TTS),open)
	@test -f $(TTS_OPEN)/train/metadata.csv || $(MAKE) data-tts-open
else
	@test -f $(TTS_DATA)/metadata.csv || $(MAKE) data-tts
endif
	OMP_NUM_THREADS=1 $(PY) -m ditkit_core.lightning.cli fit --config $(TTS_CONFIG) $(FIT_EXTRA)

# User text reaches the program through the environment, never through the shell's parsing of the recipe:
# $(value X) is X as written (no make expansion of a '$' inside it) and "$$TTS_X" is expanded by the shell once,
# without word splitting or command substitution, so quotes, '$' and backticks arrive unchanged.
sample-tts: export TTS_TEXT = $(value TEXT)
sample-tts: export TTS_TEXT_FILE = $(value TEXT_FILE)
sample-tts: export TTS_PROMPT = $(value PROMPT)
sample-tts: export TTS_PROMPT_TEXT = $(value PROMPT_TEXT)
sample-tts: export TTS_VOICE = $(value VOICE)
sample-tts: ## speak TEXT="..." or TEXT_FILE=lines.txt [VOICE=en+f3|ref.wav] [SPEED=1.0] [PROMPT=ref.wav PROMPT_TEXT="..."] [STEPS=16] [VOCODER=dir] [TTS_CKPT=...] [DRY_RUN=1] -> <run folder>/sample.wav, outputs/tts_open for TTS=open (TEXT_FILE: <run folder>/sample/)
	$(PY) -m ditkit_audio.cli sample --config $(TTS_CONFIG) $(if $(TTS_CKPT),--ckpt $(TTS_CKPT)) \
		$(if $(value TEXT_FILE),--text-file "$$TTS_TEXT_FILE",--text "$$TTS_TEXT") --steps $(STEPS) --speed $(SPEED) \
		$(if $(value VOICE),--voice "$$TTS_VOICE") \
		$(if $(value PROMPT),--prompt "$$TTS_PROMPT" --prompt-text "$$TTS_PROMPT_TEXT") \
		$(if $(VOCODER),--vocoder $(VOCODER)) $(if $(DRY_RUN),--dry-run)

train-asr-probe: ## train the CTC recogniser of the embedded corpus (2000 steps, one core; the open probe: train-asr-probe-open)
	@test -f $(TTS_DATA)/metadata.csv || $(MAKE) data-tts
	OMP_NUM_THREADS=1 $(PY) -m ditkit_audio.cli train-asr --config $(TTS_CORPUS_CONFIG) --data $(TTS_DATA)

# Open vocabulary: general English (wordfreq words, many sentence forms, numbers / dates / money read out), split so
# that test shares no sentence form and only part of the vocabulary with train; the probe has its own corpus.
TTS_OPEN ?= outputs/tts/open
PROBE_DATA ?= outputs/tts/probe_data
# the open probe: the one trained here (make train-asr-probe-open), else the shipped one
PROBE_OPEN ?= $(if $(wildcard $(TTS_OPEN)/asr_probe/config.json),$(TTS_OPEN)/asr_probe,apps/tts/pretrained/asr_probe_open)
PROBE_N ?= 12000
PROBE_STEPS ?= 10000

data-tts-open: ## open-vocabulary corpus -> outputs/tts/open/{train,val,test} + stats.json (vocabulary, test OOV rate, hours)
	$(PY) -m ditkit_audio.cli data-open --out $(TTS_OPEN)

data-asr-probe: ## the probe's own open-vocabulary corpus (training forms over all words + 40 % grammar-free word strings, seed 1; PROBE_N=12000 sentences)
	$(PY) -m ditkit_audio.cli data-probe --out $(PROBE_DATA) --n $(PROBE_N) --free-share 0.4

train-asr-probe-open: ## train the open-vocabulary CTC probe (PROBE_STEPS=10000 steps, one core, ~70 min) and print its ground-truth CER on the open test split
	@test -f $(PROBE_DATA)/metadata.csv || $(MAKE) data-asr-probe
	@test -f $(TTS_OPEN)/test/metadata.csv || $(MAKE) data-tts-open
	OMP_NUM_THREADS=1 $(PY) -m ditkit_audio.cli train-asr --data $(PROBE_DATA) --out $(TTS_OPEN)/asr_probe --steps $(PROBE_STEPS) \
		--dim 192 --depth 4 --stride 2 --upsample 2 --lr 1.5e-3 --max-audio-seconds 20 --monitor $(TTS_OPEN)/val --test $(TTS_OPEN)/test \
		--lexicon 50000

eval-asr-probe-open: ## the open probe's CER / WER (beam search and greedy) on the ground truth of the open test split (JSON; the shipped probe unless one was trained)
	@test -f $(TTS_OPEN)/test/metadata.csv || $(MAKE) data-tts-open
	OMP_NUM_THREADS=1 $(PY) -m ditkit_audio.cli eval-probe --asr $(PROBE_OPEN) --data $(TTS_OPEN)/test

train-tts-open: ## train the TTS DiT on the open corpus' train split (configs/open.yaml, dim 192 x 6 blocks, 6000 steps, one core, ~55 min)
	@test -f $(TTS_OPEN)/train/metadata.csv || $(MAKE) data-tts-open
	OMP_NUM_THREADS=1 $(PY) -m ditkit_core.lightning.cli fit --config $(TTS_OPEN_CONFIG) $(FIT_EXTRA)

train-vocoder-open: ## the neural vocoder on the open corpus (6 voices; 4000 steps, one core, ~15 min) -> outputs/tts/vocoder_open
	@test -f $(TTS_OPEN)/train/metadata.csv || $(MAKE) data-tts-open
	OMP_NUM_THREADS=1 $(PY) -m ditkit_audio.cli train-vocoder --out outputs/tts/vocoder_open \
		--tts-config $(TTS_OPEN_CONFIG) --asr $(PROBE_OPEN)

OPEN_N ?= 1000
OPEN_MAX_SECONDS ?= 20
SENTENCES ?= apps/tts/sentences/everyday.txt
SENTENCES_DATA ?= outputs/tts/sentences_eval
eval-tts-open: ## the open-vocabulary TTS read back by the open probe on the whole open test split (OPEN_N=1000 utterances at most, up to OPEN_MAX_SECONDS=20 s; JSON) [VOCODER=dir] [TTS_CKPT=...]
	@test -f $(TTS_OPEN)/test/metadata.csv || $(MAKE) data-tts-open
	OMP_NUM_THREADS=1 $(PY) -m ditkit_audio.cli eval --config $(TTS_OPEN_CONFIG) $(if $(TTS_CKPT),--ckpt $(TTS_CKPT)) \
		--data $(TTS_OPEN)/test --whole --asr $(PROBE_OPEN) --n $(OPEN_N) --max-seconds $(OPEN_MAX_SECONDS) --steps $(STEPS) \
		$(if $(VOCODER),--vocoder $(VOCODER))

ifeq ($(TTS),open)
eval-tts: eval-tts-open ## CER/WER (probe) vs ground truth, MCD-DTW, F0, speaker similarity, durations, RTF -> JSON; TTS=open (default): eval-tts-open; TTS=corpus: the embedded corpus' held-out split [VOCODER=dir] [TTS_CKPT=...]
else
eval-tts:
	$(PY) -m ditkit_audio.cli eval --config $(TTS_CONFIG) $(if $(TTS_CKPT),--ckpt $(TTS_CKPT)) --data $(TTS_DATA) \
		--steps $(STEPS) $(if $(VOCODER),--vocoder $(VOCODER))
endif

bench-tts: ## benchmarks/tts.py: RTF at 16/32 steps and DiT step time vs a plain transformer (JSON lines)
	$(PY) benchmarks/tts.py --config $(TTS_CONFIG)

train-vocoder: ## train the Vocos-style neural vocoder (configs/vocoder.yaml through ditkit fit, 4000 steps, 1 core, ~13 min) -> outputs/tts/vocoder + report.json
	@test -f $(TTS_DATA)/metadata.csv || $(MAKE) data-tts
	OMP_NUM_THREADS=1 $(PY) -m ditkit_audio.cli train-vocoder --config apps/tts/configs/vocoder.yaml

train-codec: ## train the SQ-codec (configs/sqcodec.yaml through ditkit fit, 3000 steps, 1 core, ~16 min) -> outputs/tts/codec + report.json
	@test -f $(TTS_DATA)/metadata.csv || $(MAKE) data-tts
	OMP_NUM_THREADS=1 $(PY) -m ditkit_audio.cli train-codec --config apps/tts/configs/sqcodec.yaml

eval-codec: ## held-out codec figures again (e.g. after train-vocoder): mel L1/MCD, SI-SNR, probe CER, bitrate -> JSON
	OMP_NUM_THREADS=1 $(PY) -m ditkit_audio.cli eval-codec --config apps/tts/configs/sqcodec.yaml

train-tts-codec: ## train the TTS DiT on SQ-codec tokens (configs/codec.yaml, 1500 steps, ~11 min; trains the vocoder / codec first if missing)
	@test -f outputs/tts/vocoder/config.json || $(MAKE) train-vocoder
	@test -f outputs/tts/codec/config.json || $(MAKE) train-codec
	$(PY) -m ditkit_core.lightning.cli fit --config apps/tts/configs/codec.yaml $(FIT_EXTRA)

eval-tts-sentences: export TTS_SENTENCES = $(value SENTENCES)
eval-tts-sentences: ## your own test: espeak-ng reads each line of SENTENCES=file (ground truth), the open TTS says it, the open probe reads both (JSON)
	rm -rf $(SENTENCES_DATA)
	$(PY) -m ditkit_audio.cli data-text --text-file "$$TTS_SENTENCES" --out $(SENTENCES_DATA)
	OMP_NUM_THREADS=1 $(PY) -m ditkit_audio.cli eval --config $(TTS_OPEN_CONFIG) $(if $(TTS_CKPT),--ckpt $(TTS_CKPT)) \
		--data $(SENTENCES_DATA) --whole --asr $(PROBE_OPEN) --n 100000 --max-seconds 60 --steps $(STEPS) \
		$(if $(VOCODER),--vocoder $(VOCODER))
