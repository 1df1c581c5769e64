# audio_video: joint audio-video flow matching (packages/audio, ditkit_audio.av). Included by the root Makefile.
.PHONY: data-av train-av sample-av eval-av bench-av train-av-video train-av-avdit encoder-av params-av

AV_CONFIG ?= apps/audio_video/configs/default.yaml
AV_DATA ?= outputs/av/data
AV_ENCODER ?= outputs/av/encoder
TASK ?= v2a
AV_SPLIT ?= test
AV_STEPS ?= 16
AV_INPUT ?=

data-av: ## synthesise the procedural clips (3000 / 200 / 200 clips, 32x32 px, 16 fps, 2 s) into outputs/av/data (~1 min)
	$(PY) -m ditkit_audio.av.cli data --out $(AV_DATA)

train-av: ## train the joint audio-video DiT (3000 steps, one CPU core); contact sheets in outputs/av/samples
	@test -f $(AV_DATA)/train.npz || $(MAKE) data-av
	OMP_NUM_THREADS=1 $(PY) -m ditkit_core.lightning.cli fit --config $(AV_CONFIG) $(FIT_EXTRA)

sample-av: ## one task of the trained run: TASK=joint|v2a|a2v|continue [AV_INPUT=clip.mp4] -> .mp4 with sound + contact sheet
	$(PY) -m ditkit_audio.av.cli sample --config $(AV_CONFIG) --task $(TASK) --steps $(AV_STEPS) --data $(AV_DATA) \
		$(if $(AV_INPUT),--input "$(AV_INPUT)")

encoder-av: ## train the feature network of the Frechet distances on the real training clips (~4 min)
	@test -f $(AV_DATA)/train.npz || $(MAKE) data-av
	OMP_NUM_THREADS=1 $(PY) -m ditkit_audio.av.cli encoder --data $(AV_DATA) --out $(AV_ENCODER)

eval-av: ## synchrony (onset F1, offsets), pitch-colour accuracy, distributions, Frechet distances, with controls -> JSON lines
	@test -f $(AV_ENCODER)/config.json || $(MAKE) encoder-av
	OMP_NUM_THREADS=1 $(PY) -m ditkit_audio.av.cli eval --config $(AV_CONFIG) --data $(AV_DATA) --split $(AV_SPLIT) \
		--steps $(AV_STEPS) --encoder $(AV_ENCODER)

bench-av: ## benchmarks/av.py: joint DiT vs two single-stream DiTs (training tokens/s), generation time per clip second
	$(PY) benchmarks/av.py

train-av-video: ## AV-DiT step 1: the video-only backbone (configs/video_only.yaml)
	@test -f $(AV_DATA)/train.npz || $(MAKE) data-av
	OMP_NUM_THREADS=1 $(PY) -m ditkit_core.lightning.cli fit --config apps/audio_video/configs/video_only.yaml $(FIT_EXTRA)

train-av-avdit: ## AV-DiT step 2: frozen video backbone + adapters (configs/avdit.yaml; trains the backbone if missing)
	@test -f outputs/av_video/checkpoints/last.ckpt || $(MAKE) train-av-video
	OMP_NUM_THREADS=1 $(PY) -m ditkit_core.lightning.cli fit --config apps/audio_video/configs/avdit.yaml $(FIT_EXTRA)

params-av: ## parameter counts: full joint training vs AV-DiT (trainable / total)
	$(PY) -m ditkit_audio.av.cli params apps/audio_video/configs/default.yaml apps/audio_video/configs/avdit.yaml \
		apps/audio_video/configs/video_only.yaml
