# The two commands of the README: `make run` and `make test`; and `make image`, the image
# the compiled Kubeflow pipeline runs (scripts/build_image.sh). run and test each create
# the virtual environment with Python 3.10 from the pinned requirements.lock when it is
# missing or out of date, and fetch the MovieLens release (RELEASE, 100k by default) when it is missing:
#   make run RELEASE=1m ARGS="--preset large"
VENV    := .venv
PY      := $(VENV)/bin/python
RELEASE ?= 100k
DATA    := data/movielens/ml-$(RELEASE)/SOURCE.json
ARGS    ?=
PYTEST_ARGS ?=
# `make image`: the image's tag, and BASE=stand-in where the Dockerfile's base image cannot
# be pulled (a local stand-in is built first: scripts/stand_in_base.sh).
IMAGE   ?= movielens-tfx:latest
BASE    ?= pull

.PHONY: run test data venv image clean-outputs

run: $(VENV)/.installed $(DATA)
	$(PY) runner_local.py --release $(RELEASE) $(ARGS)

test: $(VENV)/.installed data/movielens/ml-100k/SOURCE.json
	$(PY) -m pytest $(PYTEST_ARGS)

data: $(DATA)

image:
	BASE=$(BASE) bash scripts/build_image.sh $(IMAGE)

venv: $(VENV)/.installed

data/movielens/ml-%/SOURCE.json: | $(VENV)/.installed
	$(PY) -m data.fetch --release $*

$(VENV)/.installed: requirements.lock pyproject.toml scripts/make_venv.sh
	bash scripts/make_venv.sh $(VENV)
	@touch $@

clean-outputs:
	rm -rf outputs
