# make demo   first use: builds .venv, then runs a real distillation on bundled data (TASK=det|seg|cls)
# make test   runs the whole test suite
PY := .venv/bin/python
TASK ?= det

.PHONY: setup demo demo-data test
setup:
	@bash tools/setup_env.sh

demo-data: setup
	$(PY) tools/make_demo_data.py --out data/demo

demo: setup
	$(PY) tools/demo.py --task $(TASK)

test: setup
	$(PY) -m pytest tests
