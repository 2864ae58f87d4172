# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean bench test-arm arm-tools

$(STAMP): pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Trains the default model on the built-in synthetic benchmark and prints Rank-1/mAP.
demo: $(STAMP)
	$(BIN)/bireid train --output-dir runs/demo

test: $(STAMP)
	$(BIN)/ruff check bireid tests benchmarks
	$(BIN)/python -m pytest tests

lint: $(STAMP)
	$(BIN)/ruff check bireid tests benchmarks

# The engine on AArch64 without ARM hardware: installs a cross compiler and qemu (Debian packages) when missing,
# cross-compiles the engine (its real host code, pybind11 replaced by tests/arm/shim) with two C++ drivers, and runs
# them under qemu-aarch64: every NEON kernel against the portable one bit for bit (check_kernels), and whole exported
# models against the x86 engine's features (run_model; the models and features come from the x86 Python side).
ARM := build/arm
ARM_CXX := aarch64-linux-gnu-g++
ARM_FLAGS := -std=c++17 -O3 -ffp-contract=off -fopenmp -Wall -Wno-psabi -Itests/arm/shim -Ibireid/runtime/csrc -Itests/arm \
	-isystem $(ARM)/include
ARM_OBJS := $(patsubst bireid/runtime/csrc/%.cpp,$(ARM)/obj/%.o,\
	$(filter-out %/bindings.cpp,$(wildcard bireid/runtime/csrc/*.cpp)))
ARM_HDRS := $(wildcard bireid/runtime/csrc/*.h tests/arm/*.h tests/arm/shim/pybind11/*.h)
ARM_MODELS := resnet18w16_binary resnet18w16_real
.SECONDARY: $(ARM_OBJS)

arm-tools:
	@tests/arm/install_tools.sh
	@mkdir -p $(ARM)/include && ln -sfn /usr/include/nlohmann $(ARM)/include/nlohmann

$(ARM)/obj/%.o: bireid/runtime/csrc/%.cpp $(ARM_HDRS) | arm-tools
	@mkdir -p $(@D)
	nice -n 10 $(ARM_CXX) $(ARM_FLAGS) -c $< -o $@

$(ARM)/%: tests/arm/%.cpp $(ARM_OBJS) $(ARM_HDRS) | arm-tools
	nice -n 10 $(ARM_CXX) $(ARM_FLAGS) $< $(ARM_OBJS) -o $@

test-arm: $(STAMP) $(ARM)/check_kernels $(ARM)/run_model
	$(BIN)/python tests/arm/make_models.py $(ARM)/models
	tests/arm/qemu.sh $(ARM)/check_kernels
	tests/arm/qemu.sh $(ARM)/run_model $(ARM)/models $(ARM_MODELS)

clean:
	rm -rf $(VENV) build *.egg-info runs
