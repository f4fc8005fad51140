# The two commands of README.md (release, test), and a few for developers.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: release test lint typecheck bench dev clean system-packages bytecode

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# An editable install leaves our own modules uncompiled, and where PYTHONDONTWRITEBYTECODE is
# set (this sandbox, some CI images) every command compiled all of them again at its start:
# about 0.17 s of a fresh bundled build's 1.8 s before its first step (bench/README.md,
# session 20). A no-op when the caches are current.
bytecode: $(STAMP)
	$(PY) -m compileall -q pipelines schemas

release: bytecode  ## build the bundled snapshot and publish a release into data/
	$(VENV)/bin/kratom-evidence build

test: bytecode lint typecheck system-packages  ## lint, types, then the whole test suite (2 cores)
	$(VENV)/bin/pytest -q -n 2 --dist loadfile --durations=15

system-packages:  ## Debian's chromium and postgresql, which some tests drive for real
	scripts/system_packages.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)  ## scale benchmarks (not part of `make test`)
	nice -n 10 $(PY) bench/bench_ctgov.py
	nice -n 10 $(PY) bench/bench_ctgov.py --sizes 200000 --methods build --reuse --steps
	nice -n 10 $(PY) bench/bench_ctgov.py --input zip --sizes 20000 200000 560000 --methods build --reuse --steps
	nice -n 10 $(PY) bench/bench_staging_floor.py bench/out/ctgov-real-pages-20000
	nice -n 10 $(PY) bench/bench_dagster_floor.py
	nice -n 10 $(PY) bench/bench_pubmed.py
	nice -n 10 $(PY) bench/bench_merge.py

dev: $(STAMP) .env  ## the Dagster UI on the asset graph
	$(VENV)/bin/dagster dev -w workspace.yaml

.env:  ## the live credentials' variables, empty for none: every run's graph names them
	cp .env.example .env

clean:
	rm -rf data/warehouse.duckdb* data/lake data/releases data/last_build.json
