# Molecules app (ditkit-molecules): 3D atom-set flow model and SELFIES latent flow model on RDKit's first_5K.smi.
MOL_OUT := outputs/molecules
MOL_3D := apps/molecules/configs/default.yaml
MOL_LAT := apps/molecules/configs/latent.yaml
MOL_LAT2 := apps/molecules/configs/latent_wehi.yaml
.PHONY: train-molecules train-molecules-3d train-molecules-latent train-molecules-latent-wehi eval-molecules-latent-wehi sample-molecules eval-molecules bench-molecules

train-molecules: train-molecules-3d train-molecules-latent ## train both molecule models on CPU (3D + latent; checkpoints and PNG/SDF under outputs/molecules)

train-molecules-3d: ## train the 3D molecule model (atom sets, ETKDG+MMFF conformers; 9k steps, about 33 CPU-min on one thread) -> outputs/molecules/3d
	$(PY) -m ditkit_core.lightning.cli fit --config $(MOL_3D) $(FIT_EXTRA)

train-molecules-latent: ## train the SELFIES autoencoder + latent DiT -> outputs/molecules/latent
	$(PY) -m ditkit_core.lightning.cli fit --config $(MOL_LAT) $(FIT_EXTRA)

train-molecules-latent-wehi: ## the latent recipe unchanged on a second set (RDKit's WEHI screening compounds) -> outputs/molecules/latent_wehi
	$(PY) -m ditkit_core.lightning.cli fit --config $(MOL_LAT2) $(FIT_EXTRA)

eval-molecules-latent-wehi: ## the latent metric tables and goals on the second set -> outputs/molecules/eval_latent_wehi.{md,json}
	$(PY) -m ditkit_molecules.cli eval --config $(MOL_LAT2) --n 500 --out $(MOL_OUT)/eval_latent_wehi

sample-molecules: ## sample the 3D model (local run, else the shipped weights) and the latent model when trained: SMILES, SDF, PNG grid -> outputs/molecules/samples
	$(PY) -m ditkit_core.cli molecules sample --config $(MOL_3D) --n 64 --out $(MOL_OUT)/samples/3d $(ARGS)
	@if [ -f $(MOL_OUT)/latent/checkpoints/last.ckpt ]; then \
		$(PY) -m ditkit_molecules.cli sample --config $(MOL_LAT) --n 64 --out $(MOL_OUT)/samples/latent; \
	else echo "latent model: no local run at $(MOL_OUT)/latent (make train-molecules-latent)"; fi

eval-molecules: ## metric tables (validity, uniqueness, novelty, QED, SA, IntDiv, FCD, stability, RMSD; data = ceiling)
	$(PY) -m ditkit_molecules.cli eval --config $(MOL_3D) --n 200 --out $(MOL_OUT)/eval_3d
	$(PY) -m ditkit_molecules.cli eval --config $(MOL_LAT) --n 500 --out $(MOL_OUT)/eval_latent

bench-molecules: ## molecules/s on CPU at the default step count + metric table vs the training data (JSON lines)
	$(PY) benchmarks/molecules.py
