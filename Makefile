# The two commands of the README: `make run` and `make test`. Each creates the virtual
# environment with Python 3.10 from the pinned requirements.lock when it is missing or out
# of date, and fetches MovieLens 100k when it is missing.
VENV   := .venv
PY     := $(VENV)/bin/python
DATA   := data/movielens/ml-100k/SOURCE.json
ARGS   ?=
PYTEST_ARGS ?=

.PHONY: run test data venv clean-outputs

run: $(VENV)/.installed $(DATA)
	$(PY) runner_local.py $(ARGS)

test: $(VENV)/.installed $(DATA)
	$(PY) -m pytest $(PYTEST_ARGS)

data: $(DATA)

venv: $(VENV)/.installed

$(DATA): | $(VENV)/.installed
	$(PY) -m data.fetch

$(VENV)/.installed: requirements.lock pyproject.toml scripts/make_venv.sh
	bash scripts/make_venv.sh $(VENV)
	@touch $@

clean-outputs:
	rm -rf outputs
