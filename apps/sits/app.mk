# sits: remote-sensing image time series (packages/geo). Included by the root Makefile.
.PHONY: data-sits train-sits sample-sits eval-sits train-sits-presto eval-sits-presto bench-sits

data-sits: ## write the synthetic S1/S2-like image time series (train/val/test .npz) to outputs/sits/data
	$(PY) -m ditkit_geo.cli data --out outputs/sits/data

train-sits: ## train the sits DiT on synthetic scenes (3000 steps, CPU ~15-25 min); PNGs in outputs/sits/samples
	$(PY) -m ditkit_core.lightning.cli fit --config apps/sits/configs/default.yaml $(FIT_EXTRA)

sample-sits: ## cloud-removal RGB/NDVI frames + forecast curves (local run, else the shipped weights) -> outputs/sits/sample [ARGS=...]
	$(PY) -m ditkit_core.cli sits sample $(ARGS)

eval-sits: ## MAE/RMSE/CRPS, PSNR/SSIM/SAM, change F1 vs baselines (synthetic test split; local run, else the shipped weights; + Presto if trained)
	$(PY) -m ditkit_core.cli sits eval $(ARGS)
	@if [ -f outputs/sits_presto/checkpoints/last.ckpt ]; then $(PY) -m ditkit_geo.cli eval --config apps/sits/configs/presto.yaml; fi

train-sits-presto: ## train on the real Presto pixel series in ../shared/data/presto_algae (3000 steps, CPU ~15-30 min)
	$(PY) -m ditkit_core.lightning.cli fit --config apps/sits/configs/presto.yaml $(FIT_EXTRA)

eval-sits-presto: ## Presto reconstruction (30% dates masked) / forecast vs linear interpolation and seasonal naive
	$(PY) -m ditkit_geo.cli eval --config apps/sits/configs/presto.yaml

bench-sits: ## benchmarks/sits.py: evaluates the checkpoints (else trains), one JSON line per task with baselines
	$(PY) benchmarks/sits.py
