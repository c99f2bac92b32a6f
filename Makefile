# The two commands of the README: `make reproduce` (the main job: the quick Pendulum
# reproduction) and `make test`. `make demo` prints every estimator of one gradient.
# Each creates the virtual environment in .venv, or refreshes it when pyproject.toml or
# constraints.txt changed, before it runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: reproduce demo test clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,mujoco,ray,render,tensorboard]"
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/weakpg reproduce pendulum --quick

demo: $(STAMP)
	$(BIN)/weakpg demo

test: $(STAMP)
	$(BIN)/ruff check weakpg tests bench
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=15

clean:
	rm -rf $(VENV) .pytest_cache
