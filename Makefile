# callcenter: one command to run, one to test. Both set up whatever is missing (root needed for apt and the
# Asterisk sandbox chroot). See README.md.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: setup system-deps venv prompts asterisk asterisk-stop postgres postgres-stop migrate run demo test test-unit check lint translations bench bench-quick bench-history bench-live bench-load bench-work clean

setup: system-deps venv

system-deps:
	@scripts/system-deps.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# IVR prompts: Vietnamese and English WAVs spoken by espeak-ng (only missing or changed ones are redone).
prompts: setup
	$(PY) -m ivr.prompts

asterisk: setup prompts
	$(PY) -m callcenter sandbox start

asterisk-stop: venv
	$(PY) -m callcenter sandbox stop

postgres: system-deps
	@scripts/postgres.sh start

postgres-stop:
	@scripts/postgres.sh stop

migrate: venv
	$(PY) -m callcenter migrate

run: asterisk migrate
	$(PY) -m callcenter run

demo: asterisk
	$(PY) -m callcenter simulate

test: asterisk check
	pg_url=$$(scripts/postgres.sh start) && CALLCENTER_TEST_PG_URL="$$pg_url" $(PY) -m pytest -ra --durations=30 $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest -ra tests/unit

# Style and types (tests included); `make test` runs this first.
check: venv
	$(PY) -m ruff check callcenter ivr recordings tests bench
	$(PY) -m mypy callcenter ivr recordings tests bench

# check, and the dependency audit (pip-audit, PyPI's advisory data) run --strict: a package it cannot look up
# fails the audit instead of passing unchecked. Where the advisory service cannot be reached (machines whose only
# network is the package index), it says loudly that nothing was checked and lint goes on; AUDIT_REQUIRED=1 makes
# that an error. Known vulnerabilities always fail.
lint: check
	@out=$$($(VENV)/bin/pip-audit --strict --skip-editable --progress-spinner off 2>&1); rc=$$?; \
	if [ $$rc -eq 0 ]; then echo "pip-audit: no known vulnerabilities in the installed dependencies"; \
	elif printf '%s' "$$out" | grep -q 'known vulnerabilit'; then printf '%s\n' "$$out"; exit 1; \
	elif printf '%s' "$$out" | grep -qE 'could not be audited|ConnectionError|Failed to resolve|Max retries'; then \
	  printf '%s\n' "$$out" | grep -E 'could not be audited|Error' | tail -n 2; \
	  echo "pip-audit: THE DEPENDENCY AUDIT COULD NOT RUN (advisory service unreachable): NOTHING WAS CHECKED"; \
	  test "$(AUDIT_REQUIRED)" != 1; \
	else printf '%s\n' "$$out"; exit $$rc; fi

# Extract the pages' messages and merge them into the catalogs (then translate the new ones in the .po files).
translations: venv
	$(VENV)/bin/pybabel extract -F babel.cfg -k _ -k gettext -k ngettext:1,2 -k N_ --no-location --omit-header \
	  -o callcenter/web/translations/messages.pot .
	$(VENV)/bin/pybabel update -i callcenter/web/translations/messages.pot -d callcenter/web/translations \
	  --no-fuzzy-matching --width 120 --ignore-obsolete

# Every benchmark, then one table of their figures (about 30 minutes: the history one generates a million calls
# once, the load one runs calls through the sandbox for minutes). bench-quick: the two that need neither.
bench: bench-quick bench-history bench-live bench-load
	$(PY) -m bench.report

bench-quick: venv
	$(PY) -m bench.ingest $(BENCH_ARGS)
	$(PY) -m bench.recordings
	$(PY) -m bench.report

# Years of history: 1,000,000 generated calls on SQLite and PostgreSQL (its own database on the test cluster),
# then every history and statistics query the pages run, p50/p95. About 10 minutes on 2 cores; BENCH_ARGS=--reuse
# measures the data of the last run again without regenerating it.
bench-history: venv
	pg_url=$$(CALLCENTER_PG_DB=callcenter_bench scripts/postgres.sh start) && \
	  $(PY) -m bench.history --sqlite var/bench-history.db --pg "$$pg_url" --explain $(BENCH_ARGS)

# Real calls through the sandbox: how soon the live board shows a CEL event.
bench-live: asterisk
	$(PY) -m bench.live_board

# The listener's work per CEL event, stage by stage, in instructions counted by valgrind (steady where timings on
# this machine are not: for comparing two versions of the ingest path). 5 to 7 minutes; not in `bench`.
bench-work: venv
	@command -v valgrind > /dev/null || { apt-get update -q && apt-get install -y -q --no-install-recommends valgrind; }
	$(PY) -m bench.ingest_work $(BENCH_ARGS)

# 100 concurrent recorded calls through the sandbox (SIPp citizens and operators, the real IVR and listener), then
# levels to find the knee: BENCH_ARGS="--steps 40,70,100,130 --minutes 3". Root; minutes per level; not in `bench`.
bench-load: asterisk
	$(PY) -m bench.load $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
