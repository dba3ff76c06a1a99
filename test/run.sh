#!/usr/bin/env bash
# Run every test of marketo_fdw on this machine: installs what is missing,
# builds and installs the extension, starts the mock Marketo and runs the
# pg_regress suites (in a temporary cluster that preloads the library) and
# the TAP tests (each starts its own clusters and mock).
source "$(dirname "$0")/lib.sh"

install_deps
build_install
make_workdir
trap 'stop_mock' EXIT

# TESTS=regress or TESTS=tap runs one kind only (development)
TESTS=${TESTS:-all}
passed=0
failed=0
if [ "$TESTS" = all ]; then
	say "mock Marketo self-test"
	if as_pg python3 "$WORK/test/mock_selftest.py"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
fi

if [ "$TESTS" != tap ]; then
# a fixed port: error messages name the instance (host:port)
start_mock "${MARKETO_MOCK_PORT:-54380}" --rate-window 2
say "pg_regress suites (mock at $MARKETO_MOCK_URL)"
if as_pg MARKETO_MOCK_URL="$MARKETO_MOCK_URL" \
	make -C "$WORK" -s PG_CONFIG="$(pg_config_path)" installcheck; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
	cat "$WORK/regression.diffs" 2>/dev/null | head -300 >&2 || true
fi
stop_mock
fi

if [ "$TESTS" != regress ]; then
say "TAP tests"
pgxs=$(dirname "$("$(pg_config_path)" --pgxs)")/..
if (cd "$WORK" && as_pg PATH="$(pg_bindir):$PATH" TESTDIR="$WORK" \
	PG_REGRESS="$pgxs/test/regress/pg_regress" \
	prove -I "$pgxs/test/perl" -I "$WORK/test" --timer ${PROVE_FLAGS:-} test/t/*.pl); then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
	for f in "$WORK"/tmp_check/log/regress_log_*; do
		[ -f "$f" ] && { echo "--- $f" >&2; tail -80 "$f" >&2; }
	done
fi
fi

if [ $failed = 0 ]; then
	stop_mock
	rm -rf "$WORK"
else
	say "TESTS FAILED (work dir $WORK kept)"
fi
# one line for CI: the suites (mock self-test, pg_regress, TAP)
echo "suites: $passed passed, $failed failed"
[ $failed = 0 ]
