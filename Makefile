# harmowam-edge developer entry points. Every target sets itself up: `make demo` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HE := $(VENV)/bin/harmowam-edge
# A CPU build of torch on workstations and CI; set TORCH_SPEC to a CUDA build if you have a GPU.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= export,calib,sim,dev
BENCH_OUT ?= bench-results
PRECISION ?= fp32
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: help setup system-deps test test-python test-firmware lint format bench export demo policy student clean

help:
	@echo "make demo     set up, build the demo bundle, run the simulated rig for ~20 s"
	@echo "make test     set up, run the firmware C unit tests and the Python test suite"
	@echo "make lint     ruff + mypy"
	@echo "make bench    benchmarks: tables on screen, JSON under $(BENCH_OUT)/"
	@echo "make export CKPT=dir OUT=bundle [PRECISION=fp32|fp16|int8] [CALIB=recording|npz-dir]"
	@echo "make policy  demos -> train a teacher -> bundle -> sim eval in 4 scenes -> table (POLICY_* below)"
	@echo "make student make policy, then distill -> FP32/FP16/INT8 student -> sim eval vs the teacher (STUDENT_*)"

# System libraries the Python wheels load at run time (pyrealsense2: libusb; MuJoCo headless: EGL + Mesa).
SYSTEM_LIBS := libusb-1.0.so.0 libEGL.so.1
SYSTEM_PKGS := libusb-1.0-0 libegl1 libgl1-mesa-dri gcc make
system-deps:
	@missing=""; for lib in $(SYSTEM_LIBS); do ldconfig -p | grep -q "$$lib" || missing="$$missing $$lib"; done; \
	command -v cc >/dev/null || missing="$$missing cc"; \
	if [ -n "$$missing" ]; then \
	  echo "missing system libraries:$$missing"; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PKGS) >/dev/null; \
	  else \
	    echo "install them with: sudo apt-get install -y $(SYSTEM_PKGS)"; exit 1; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, so that the export extra's `torch>=...` is already met and pulls no CUDA packages.
	if [[ ",$(EXTRAS)," == *",export,"* ]]; then $(PY) -m pip install -q "$(TORCH_SPEC)"; fi
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

setup: $(VENV)/.installed

test: test-firmware test-python

test-firmware:
	$(MAKE) --no-print-directory -C firmware_bridge/firmware test

test-python: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	mkdir -p $(BENCH_OUT)
	$(HE) bridge bench --json $(BENCH_OUT)/bridge.json
	$(HE) export bench --json $(BENCH_OUT)/export.json
	$(HE) bench --json $(BENCH_OUT)/runtime.json
	# The design's policy-step figure is for the small preset on 2 cores: a seeded small bundle, built once.
	test -f $(BENCH_OUT)/bundles/small/manifest.json || { \
	  $(HE) export init --config small --out $(BENCH_OUT)/checkpoints/small --force && \
	  $(HE) export bundle $(BENCH_OUT)/checkpoints/small --out $(BENCH_OUT)/bundles/small --force; }
	$(HE) bench --bundle $(BENCH_OUT)/bundles/small --threads 2 --json $(BENCH_OUT)/runtime-small.json
	# The shipped student against a network of its teacher's shape (4 flow steps; seeded, as the teacher is not
	# shipped: a step's time does not depend on the weights), and INT8 world models (forced, s8 and u8) against
	# FP32, all timed interleaved in one run.
	test -f $(BENCH_OUT)/bundles/student/manifest.json || \
	  $(HE) export bundle checkpoints/demo-student --out $(BENCH_OUT)/bundles/student --force
	test -f $(BENCH_OUT)/bundles/teacher-shape/manifest.json || { \
	  $(HE) export init --like checkpoints/demo-student --flow-steps 4 --out $(BENCH_OUT)/checkpoints/teacher-shape --force && \
	  $(HE) export bundle $(BENCH_OUT)/checkpoints/teacher-shape --out $(BENCH_OUT)/bundles/teacher-shape --force; }
	for a in s8 u8; do test -f $(BENCH_OUT)/bundles/student-shape-int8wm-$$a/manifest.json || { \
	  $(HE) export init --like checkpoints/demo-student --out $(BENCH_OUT)/checkpoints/student-shape --force && \
	  $(HE) export bundle $(BENCH_OUT)/checkpoints/student-shape --out $(BENCH_OUT)/bundles/student-shape-int8wm-$$a \
	    --precision int8 --calib synthetic --int8-force world_model --int8-activations $$a --force; } || exit 1; done
	$(HE) bench --bundle $(BENCH_OUT)/bundles/student --bundle $(BENCH_OUT)/bundles/teacher-shape \
	  --bundle $(BENCH_OUT)/bundles/student-shape-int8wm-s8 --bundle $(BENCH_OUT)/bundles/student-shape-int8wm-u8 \
	  --threads 2 --json $(BENCH_OUT)/runtime-student.json
	$(HE) sim bench --json $(BENCH_OUT)/sim.json
	$(HE) calibrate bench --json $(BENCH_OUT)/calibration.json

export: setup
	@test -n "$(CKPT)" -a -n "$(OUT)" || { echo "usage: make export CKPT=checkpoint-dir OUT=bundle-dir [PRECISION=fp32|fp16|int8] [CALIB=path]"; exit 2; }
	$(HE) export bundle "$(CKPT)" --out "$(OUT)" --precision $(PRECISION) $(if $(CALIB),--calib "$(CALIB)") $(if $(FORCE),--force)

# make policy: demonstrations on training seeds -> a trained teacher -> POLICY_ROUNDS DAgger rounds (each: the
# latest teacher's own rollouts labelled by the scripted expert, then training on from that teacher on the demos
# and every round's rollouts) -> FP32 bundle -> closed-loop `sim eval` on evaluation seeds in the four scenes ->
# one table. Each stage is skipped when its output exists (delete it to redo); every stage prints its wall time.
# Stage times on this 2-core machine: docs/training.md.
POLICY_OUT ?= out/policy
POLICY_TASK ?= pick_red_cube
POLICY_EPISODES ?= 400
POLICY_PRESET ?= nano
POLICY_IMAGE ?= 128x96
POLICY_STEPS ?= 12000
POLICY_LR ?= 1e-3
POLICY_STATE_NOISE ?= 0.05
POLICY_BATCH ?= 32
POLICY_DEVICE ?= cpu
POLICY_ROUNDS ?= 3
POLICY_DAGGER ?= 20
POLICY_DAGGER_STEPS ?= 3000
POLICY_EVAL ?= 50
POLICY_SCENES ?= id background position semantics
POLICY_TRAIN = $(HE) train --preset $(POLICY_PRESET) $(if $(POLICY_IMAGE),--image $(POLICY_IMAGE)) \
  --batch-size $(POLICY_BATCH) --device $(POLICY_DEVICE) --state-noise $(POLICY_STATE_NOISE)

policy: setup
	@mkdir -p $(POLICY_OUT)
	@t=$$SECONDS; test -f $(POLICY_OUT)/demos/dataset.json || \
	  $(HE) sim demos --task $(POLICY_TASK) --episodes $(POLICY_EPISODES) --seed 0 --out $(POLICY_OUT)/demos \
	    --cameras front:128x96 --no-depth --record-hz 15 --perturb start,push || exit 1; \
	  echo "stage demos: $$((SECONDS - t)) s"
	@t=$$SECONDS; test -f $(POLICY_OUT)/teacher0/weights.safetensors || \
	  $(POLICY_TRAIN) --data $(POLICY_OUT)/demos --steps $(POLICY_STEPS) --lr $(POLICY_LR) \
	    --out $(POLICY_OUT)/teacher0 || exit 1; echo "stage train: $$((SECONDS - t)) s"
	@for r in $$(seq 1 $(POLICY_ROUNDS)); do p=$$((r - 1)); t=$$SECONDS; \
	  test -f $(POLICY_OUT)/bundle$$p/manifest.json || \
	    $(HE) export bundle $(POLICY_OUT)/teacher$$p --out $(POLICY_OUT)/bundle$$p || exit 1; \
	  test -f $(POLICY_OUT)/dagger$$r/dataset.json || \
	    $(HE) sim dagger --bundle $(POLICY_OUT)/bundle$$p --task $(POLICY_TASK) --episodes $(POLICY_DAGGER) \
	      --seed $$((50000 + 1000 * r)) --out $(POLICY_OUT)/dagger$$r || exit 1; \
	  data="--data $(POLICY_OUT)/demos"; for i in $$(seq 1 $$r); do data="$$data --data $(POLICY_OUT)/dagger$$i"; done; \
	  test -f $(POLICY_OUT)/teacher$$r/weights.safetensors || \
	    $(POLICY_TRAIN) --init $(POLICY_OUT)/teacher$$p $$data --steps $(POLICY_DAGGER_STEPS) --lr 3e-4 \
	      --gate-labels accuracy --out $(POLICY_OUT)/teacher$$r || exit 1; \
	  echo "stage dagger round $$r: $$((SECONDS - t)) s"; done
	@t=$$SECONDS; test -f $(POLICY_OUT)/bundle/manifest.json || \
	  $(HE) export bundle $(POLICY_OUT)/teacher$(POLICY_ROUNDS) --out $(POLICY_OUT)/bundle || exit 1; \
	  echo "stage bundle: $$((SECONDS - t)) s"
	@for scene in $(POLICY_SCENES); do t=$$SECONDS; \
	  test -f $(POLICY_OUT)/eval-$$scene/report.json || \
	  $(HE) sim eval --bundle $(POLICY_OUT)/bundle --task $(POLICY_TASK) --episodes $(POLICY_EVAL) --seed 100000 \
	    --scene $$scene --out $(POLICY_OUT)/eval-$$scene || exit 1; echo "stage eval $$scene: $$((SECONDS - t)) s"; done
	$(HE) sim table $(foreach s,$(POLICY_SCENES),$(POLICY_OUT)/eval-$(s)/report.json) --json $(POLICY_OUT)/table.json

# make student: `make policy`, then the edge student distilled from its last teacher (STUDENT_FLOW_STEPS flow
# steps, started from the teacher's weights, trained on the teacher's labels of the same data), its FP32 / FP16 /
# INT8 bundles (INT8 calibrated on `sim demos` episodes from STUDENT_CALIB_SEED, a seed range no stage trains on), and
# `sim eval` interleaved per seed: teacher FP32 and the student's three bundles in scene id, teacher FP32 and
# student INT8 in the unseen scenes; one table with the paired comparisons (student-table.json).
STUDENT_PRESET ?= nano
STUDENT_FLOW_STEPS ?= 2
STUDENT_STEPS ?= 1500
STUDENT_CALIB_EPISODES ?= 16
STUDENT_CALIB_SEED ?= 90000
STUDENT_EVAL ?= 100
STUDENT_EVAL_OOD ?= 30
STUDENT_OOD_SCENES ?= background position semantics
# e.g. --budget 2, or --force (toy runs: a barely trained student may have no network within budget in INT8)
STUDENT_INT8_FLAGS ?=
STUDENT_DATA = --data $(POLICY_OUT)/demos $(foreach r,$(shell seq 1 $(POLICY_ROUNDS)),--data $(POLICY_OUT)/dagger$(r))
student: policy
	@t=$$SECONDS; test -f $(POLICY_OUT)/student/weights.safetensors || \
	  $(HE) distill --teacher $(POLICY_OUT)/teacher$(POLICY_ROUNDS) --preset $(STUDENT_PRESET) \
	    $(if $(POLICY_IMAGE),--image $(POLICY_IMAGE)) --flow-steps $(STUDENT_FLOW_STEPS) --from-teacher \
	    $(STUDENT_DATA) --steps $(STUDENT_STEPS) --batch-size $(POLICY_BATCH) --lr 1e-4 --device $(POLICY_DEVICE) \
	    --out $(POLICY_OUT)/student || exit 1; echo "stage distill: $$((SECONDS - t)) s"
	@t=$$SECONDS; test -f $(POLICY_OUT)/calib/dataset.json || \
	  $(HE) sim demos --task $(POLICY_TASK) --episodes $(STUDENT_CALIB_EPISODES) --seed $(STUDENT_CALIB_SEED) \
	    --out $(POLICY_OUT)/calib --cameras front:$(or $(POLICY_IMAGE),128x96) --no-depth --record-hz 15 || exit 1; \
	  for p in fp32 fp16 int8; do test -f $(POLICY_OUT)/student-$$p/manifest.json || \
	    $(HE) export bundle $(POLICY_OUT)/student --out $(POLICY_OUT)/student-$$p --precision $$p \
	      --calib $(POLICY_OUT)/calib $$([ $$p = int8 ] && echo $(STUDENT_INT8_FLAGS)) || exit 1; done; echo "stage student bundles: $$((SECONDS - t)) s"
	@t=$$SECONDS; test -f $(POLICY_OUT)/student-eval-id/report.json || \
	  $(HE) sim eval --bundle $(POLICY_OUT)/bundle --bundle $(POLICY_OUT)/student-int8 \
	    --bundle $(POLICY_OUT)/student-fp32 --bundle $(POLICY_OUT)/student-fp16 --task $(POLICY_TASK) \
	    --episodes $(STUDENT_EVAL) --seed 100000 --scene id --out $(POLICY_OUT)/student-eval-id || exit 1; \
	  echo "stage student eval id: $$((SECONDS - t)) s"
	@for scene in $(STUDENT_OOD_SCENES); do t=$$SECONDS; \
	  test -f $(POLICY_OUT)/student-eval-$$scene/report.json || \
	  $(HE) sim eval --bundle $(POLICY_OUT)/bundle --bundle $(POLICY_OUT)/student-int8 --task $(POLICY_TASK) \
	    --episodes $(STUDENT_EVAL_OOD) --seed 100000 --scene $$scene --out $(POLICY_OUT)/student-eval-$$scene || exit 1; \
	  echo "stage student eval $$scene: $$((SECONDS - t)) s"; done
	$(HE) sim table $(foreach s,id $(STUDENT_OOD_SCENES),$(POLICY_OUT)/student-eval-$(s)/report.json) \
	  --json $(POLICY_OUT)/student-table.json

# The layout `make demo` shows: an evaluation seed on which the shipped student, its FP16 and INT8 bundles and its
# teacher all picked the cube in `sim eval` (it does so on about half of unseen layouts; DEMO_SEED=N for another).
DEMO_SEED ?= 100015
demo: setup
	$(HE) run --sim --duration 20 --seed $(DEMO_SEED)

clean:
	rm -rf $(BENCH_OUT) .pytest_cache .ruff_cache .mypy_cache firmware_bridge/firmware/build
