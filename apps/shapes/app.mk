# shapes: 3D point clouds (packages/shapes). Included by the root Makefile.
.PHONY: data-shapes train-shapes train-shapes-voxel train-shapes-table sample-shapes eval-shapes eval-shapes-table \
	bench-shapes bench-windows

data-shapes: ## write the procedural 6-class point-cloud dataset (2048 pts, train/val/test .npy) to the default config's data root
	$(PY) -m ditkit_shapes.cli data --config apps/shapes/configs/default.yaml

train-shapes: ## train the class-conditional point-token flow DiT (CPU, ~5-11 min); .ply + PNG grids in outputs/shapes/samples
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m ditkit_core.lightning.cli fit --config apps/shapes/configs/default.yaml $(FIT_EXTRA)

train-shapes-voxel: ## train the DiT-3D voxel-patch variant (3D RoPE; CPU, ~6 min) into outputs/shapes_voxel
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m ditkit_core.lightning.cli fit --config apps/shapes/configs/voxel.yaml $(FIT_EXTRA)

train-shapes-table: ## single-class tables (Fourier point features, logit-normal times, late EMA; 5000 steps, ~31 min on a shared CPU) into outputs/shapes_table
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m ditkit_core.lightning.cli fit --config apps/shapes/configs/table.yaml $(FIT_EXTRA)

sample-shapes: ## sample every class + a completion demo (local run, else the shipped weights; .ply + PNG in <run>/sample) [ARGS=...]
	$(PY) -m ditkit_core.cli shapes sample $(ARGS)

eval-shapes: ## per-class MMD/COV/1-NNA (CD, exact EMD) of generated vs test clouds, next to train-vs-test (local run, else the shipped weights)
	$(PY) -m ditkit_core.cli shapes eval --n 32 --emd-points 128 $(ARGS)

eval-shapes-table: ## MMD/COV/1-NNA (CD, exact EMD) of the table model vs all 48 test tables, next to train-vs-test
	$(PY) -m ditkit_shapes.cli eval --config apps/shapes/configs/table.yaml --n 48 --emd-points 128

bench-shapes: ## benchmarks/shapes.py: 3D window vs global attention (16^3, 32^3 voxels), metric time 100 vs 100
	$(PY) benchmarks/shapes.py

bench-windows: ## benchmarks/long_windows.py: 4,096-token voxel DiT, 3D windows vs global attention, time per step and val loss after the same budget (~15 min, one core)
	OMP_NUM_THREADS=1 $(PY) benchmarks/long_windows.py $(ARGS)
