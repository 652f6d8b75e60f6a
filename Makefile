# The two commands of the README: `make run` and `make test`. Each creates the virtual
# environment with Python 3.10 from the pinned requirements.lock when it is missing or out
# of date, and fetches the MovieLens release (RELEASE, 100k by default) when it is missing:
#   make run RELEASE=1m ARGS="--preset large"
VENV    := .venv
PY      := $(VENV)/bin/python
RELEASE ?= 100k
DATA    := data/movielens/ml-$(RELEASE)/SOURCE.json
ARGS    ?=
PYTEST_ARGS ?=

.PHONY: run test data venv clean-outputs

run: $(VENV)/.installed $(DATA)
	$(PY) runner_local.py --release $(RELEASE) $(ARGS)

test: $(VENV)/.installed data/movielens/ml-100k/SOURCE.json
	$(PY) -m pytest $(PYTEST_ARGS)

data: $(DATA)

venv: $(VENV)/.installed

data/movielens/ml-%/SOURCE.json: | $(VENV)/.installed
	$(PY) -m data.fetch --release $*

$(VENV)/.installed: requirements.lock pyproject.toml scripts/make_venv.sh
	bash scripts/make_venv.sh $(VENV)
	@touch $@

clean-outputs:
	rm -rf outputs
