# Robot policy app (ditkit-robotics): Meta-World demos -> flow-matching DiT policy -> rollouts.
.PHONY: data-policy train-policy sample-policy eval-policy bench-policy debug-policy

POLICY_DATA ?= data/policy/metaworld_demos.zarr
POLICY_EPISODES ?= 50

data-policy: ## scripted-expert Meta-World demos (5 tasks x 50 episodes, zarr) into data/policy
	OMP_NUM_THREADS=1 $(PY) -m ditkit_robotics.cli data --out $(POLICY_DATA) --episodes $(POLICY_EPISODES)

train-policy: ## train the multi-task MoE flow policy on CPU (3000 steps; about 21 min on one core, up to 33 min under load); checkpoints + PNGs under outputs/policy
	@test -e $(POLICY_DATA) || $(MAKE) data-policy
	$(PY) -m ditkit_core.lightning.cli fit --config apps/policy/configs/default.yaml $(FIT_EXTRA)

sample-policy: ## a few rollouts per task (held-out seeds): GIF per task, actions.npz, sample.json in outputs/policy/sample [ARGS="--episodes 4 --tasks reach-v3"]
	MUJOCO_GL=$${MUJOCO_GL:-osmesa} $(PY) -m ditkit_core.cli policy sample $(ARGS)

eval-policy: ## roll the policy out (fixed seeds; local run, else the shipped weights): success per task vs scripted expert, GIF, eval.md in outputs/policy
	MUJOCO_GL=$${MUJOCO_GL:-osmesa} $(PY) -m ditkit_core.cli policy eval --out outputs/policy $(ARGS)

bench-policy: ## latency per action chunk: dense vs MoE vs MoE+expert caching vs block caching (1/4/10 steps)
	$(PY) benchmarks/policy.py

debug-policy: ## seconds-long smoke run of the policy app on synthetic episodes
	$(PY) -m ditkit_core.lightning.cli fit --config apps/policy/configs/debug.yaml $(FIT_EXTRA)
