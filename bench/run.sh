#!/usr/bin/env bash
# marketo_fdw benchmarks.  As root on a Debian machine (installs what is
# missing), or as a user who can run PostgreSQL 15 and `sudo make install`:
#
#   bash bench/run.sh
#
# Builds and installs marketo_fdw and the bench-only module
# bench/governor_bench (extension marketo_fdw_bench), starts a throw-away
# cluster that preloads marketo_fdw and the bundled mock Marketo, both on
# loopback, and prints:
#
#   1. the governor's acquire+release cost (1 and 8 backends) against one
#      lookup through the FDW on loopback, and the share of the rate budget
#      the governor lets through;
#   2. decoding: rows/s of the FDW reading 1000 leads against PostgreSQL's
#      own jsonb_to_recordset over the very same answers, and the API calls
#      used against the minimum;
#   3. API calls per lookup pattern against the minimum.
#
# Every figure is a ratio against a baseline measured in the same run.  It
# stops by itself (about half a minute after the build) and removes its cluster,
# mock and work directory; BENCH_KEEP=1 keeps the work directory.
# GOV_SECONDS (default 2) is the length of each governor run.
source "$(dirname "$0")/../test/lib.sh"

BENCH_PORT=${BENCH_PORT:-54339}
GOV_SECONDS=${GOV_SECONDS:-2}
GOV_BACKENDS=8
RATE_WINDOW_MS=100		# marketo_fdw.rate_window's minimum
RATE_LIMIT=100			# rate_limit's maximum
DECODE_REPS=9			# timed runs of each query (the FDW's: 4 calls each)
LEADS=1000

BIN=$(pg_bindir)
PGDATA=""
BG_PIDS=""

cleanup() {
	local p
	for p in $BG_PIDS; do kill "$p" 2>/dev/null || true; done
	if [ -n "$PGDATA" ] && [ -f "$PGDATA/postmaster.pid" ]; then
		as_pg "$BIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
	fi
	stop_mock
	if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
		if [ -n "${BENCH_KEEP:-}" ]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
	fi
}
trap cleanup EXIT

install_deps
build_install
make_workdir

say "building and installing the bench module (marketo_fdw_bench)"
as_pg make -C "$WORK/bench/governor_bench" -s PG_CONFIG="$(pg_config_path)"
if [ "$(id -u)" = 0 ]; then
	make -C "$WORK/bench/governor_bench" -s PG_CONFIG="$(pg_config_path)" install >/dev/null
else
	sudo make -C "$WORK/bench/governor_bench" -s PG_CONFIG="$(pg_config_path)" install >/dev/null
fi

# The mock's limits match the governor's settings, so a 606 or 615 would
# be the governor's fault; its quota is out of the way.
start_mock 0 --rate-window "$(awk "BEGIN { print $RATE_WINDOW_MS / 1000 }")" \
	--rate-limit "$RATE_LIMIT" --max-in-flight 10 --daily-quota 100000000 --latency-ms 0
MOCK=$MARKETO_MOCK_URL
mockctl() { python3 "$WORK/bench/mockctl.py" "$MOCK" "$@"; }

PGDATA="$WORK/bench-cluster"
say "throw-away cluster in $PGDATA (port $BENCH_PORT)"
as_pg "$BIN/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
cat >>"$PGDATA/postgresql.conf" <<CONF
shared_preload_libraries = 'marketo_fdw'
marketo_fdw.rate_window = '${RATE_WINDOW_MS}ms'
port = $BENCH_PORT
listen_addresses = ''
unix_socket_directories = '$WORK'
max_connections = 30
fsync = off
synchronous_commit = off
statement_timeout = '90s'
CONF
as_pg "$BIN/pg_ctl" -D "$PGDATA" -l "$WORK/bench-cluster.log" -w start >/dev/null

psql_b() { as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$BENCH_PORT" -U postgres -d postgres "$@"; }
# one value, or one row of |-separated values
sql() { psql_b -At -c "$1"; }

psql_b -v mock_url="$MOCK" -v gov_url="http://127.0.0.1:9" -f "$WORK/bench/setup.sql"

# printf helpers
rule() { printf '%s\n' "-------------------------------------------------------------------------------"; }
title() { printf '\n%s\n' "$*"; rule; }
pct() { awk "BEGIN { printf \"%.2f\", 100 * $1 / $2 }"; }
ratio() { awk "BEGIN { printf \"%.2f\", $1 / $2 }"; }

# ---------------------------------------------------------------------------
# 1. Governor cost
# ---------------------------------------------------------------------------
say "1. governor: loopback baseline"
# 4 batches of 60 lookups, 120 ms apart: never more than 60 calls in a
# 100 ms window, so no lookup waits for the governor.
IFS='|' read -r LB_N LB_MEAN LB_MEDIAN LB_FOUND < <(sql \
	"SELECT lookups, round(mean_us::numeric, 1), round(median_us::numeric, 1), hits
	   FROM bench.loopback_lookups(4, 60, 0.12)")

gov_run() {		# gov_run BACKENDS
	local n=$1 start pids="" p status=0
	# all backends start together, once their warm-up call has left the window
	start=$(sql "SELECT clock_timestamp() + interval '1500 ms'")
	for _ in $(seq "$n"); do
		psql_b -c "INSERT INTO bench.gov_runs SELECT $n, pg_backend_pid(), *
		             FROM marketo_fdw_bench_governor('gov', 2000000, '$start', $GOV_SECONDS)" &
		pids="$pids $!"
	done
	BG_PIDS=$pids
	for p in $pids; do wait "$p" || status=1; done
	BG_PIDS=""
	[ $status = 0 ] || { say "a governor run failed"; exit 1; }
}
say "1. governor: 1 backend, ${GOV_SECONDS}s"
gov_run 1
say "1. governor: $GOV_BACKENDS backends, ${GOV_SECONDS}s"
gov_run "$GOV_BACKENDS"

title "1. Governor cost (issue #3): governor_begin_call + governor_end_call per call"
printf 'budget: rate_limit %d per rate_window %d ms = %d calls/s.  Each run %s s of back-to-back\n' \
	"$RATE_LIMIT" "$RATE_WINDOW_MS" $((RATE_LIMIT * 1000 / RATE_WINDOW_MS)) "$GOV_SECONDS"
printf 'begin/end pairs with nothing in between; "no wait": pairs under 50 µs (the acquire+release cost); a pair that slept (rate window, or its turn in the queue of waiters) takes longer\n\n'
printf '%-9s %7s %8s %9s %9s %9s %8s %8s %9s %10s\n' \
	backends calls "no wait" "mean µs" "median" "p99 µs" "begin" "end" "calls/s" "of budget"
declare -A GOV_MEAN
FAIRNESS=""
for n in 1 "$GOV_BACKENDS"; do
	IFS='|' read -r calls fast mean median p99 bmed emed timer cps budget share late \
		mincalls maxcalls waits longest < <(sql \
		"SELECT calls, fast, round(mean_us::numeric, 2), round(median_us::numeric, 2),
		        round(p99_us::numeric, 2), round(begin_median_us::numeric, 2),
		        round(end_median_us::numeric, 2), round(timer_us::numeric, 3),
		        round(calls_per_s::numeric), round(budget_per_s::numeric),
		        round(100 * share::numeric, 1), late, min_calls, max_calls, waits,
		        round(longest_wait_ms::numeric)
		   FROM bench.gov_report($n, $RATE_WINDOW_MS / 1000.0, $RATE_LIMIT)")
	GOV_MEAN[$n]=$mean
	printf '%-9s %7s %8s %9s %9s %9s %8s %8s %9s %9s%%\n' \
		"$n" "$calls" "$fast" "$mean" "$median" "$p99" "$bmed" "$emed" "$cps" "$share"
	[ "$late" = t ] && printf '  (a backend reached the common start late: figures less reliable)\n'
	FAIRNESS="$FAIRNESS$(printf '%s backend(s): %s waits; calls per backend %s..%s; longest wait %s ms' \
		"$n" "$waits" "$mincalls" "$maxcalls" "$longest")\n"
done
printf '%b' "$FAIRNESS"
printf '(begin/end: medians of each half of a pair; reading the clock twice costs %s µs)\n' "$timer"
printf '(calls/s: steady rate, from call k*%d+1 against the first; of budget = calls/s / %d)\n\n' \
	"$RATE_LIMIT" $((RATE_LIMIT * 1000 / RATE_WINDOW_MS))
printf 'baseline: one lookup by id through the FDW, mock on loopback (plan + governor +\n'
printf '          HTTP + decode), %s lookups paced so none waits: mean %s µs, median %s µs\n' \
	"$LB_N" "$LB_MEAN" "$LB_MEDIAN"
[ "$LB_FOUND" = "$LB_N" ] || printf '          (only %s of them found their lead!)\n' "$LB_FOUND"
printf 'governor overhead = %s µs = %s%% of a loopback call   (1 backend)\n' \
	"${GOV_MEAN[1]}" "$(pct "${GOV_MEAN[1]}" "$LB_MEAN")"
printf 'governor overhead = %s µs = %s%% of a loopback call   (%d backends)\n' \
	"${GOV_MEAN[$GOV_BACKENDS]}" "$(pct "${GOV_MEAN[$GOV_BACKENDS]}" "$LB_MEAN")" "$GOV_BACKENDS"

# ---------------------------------------------------------------------------
# 2. Decoding
# ---------------------------------------------------------------------------
say "2. decoding: $LEADS leads by id through the FDW, and the same answers with curl"
FDW_Q="SELECT count(l) FROM bench.leads_wide l WHERE id = ANY (ARRAY(SELECT generate_series(1, $LEADS)))"
MIN_CALLS=$(( (LEADS + 299) / 300 ))
sql "SELECT bench.time_ms(\$q\$$FDW_Q\$q\$, 1)" >/dev/null		# token, connection, caches
mockctl last-urls "$MIN_CALLS" >"$WORK/urls"
TOKEN=$(mockctl token)
curl_args=()
i=0
while read -r url; do
	i=$((i + 1))
	curl_args+=(-o "$WORK/answer$i.json" "$url")
done <"$WORK/urls"
CURL_MS=()
for _ in $(seq "$DECODE_REPS"); do
	# one curl for all the answers, keep-alive and gzip as the FDW; the sum
	# of the transfers' times leaves out curl's own start-up
	CURL_MS+=("$(curl -s --compressed -H "Authorization: Bearer $TOKEN" \
		-w '%{time_total}\n' "${curl_args[@]}" |
		awk '{ s += $1 } END { printf "%.3f", s * 1000 }')")
done
chmod 644 "$WORK"/answer*.json
for j in $(seq "$i"); do
	sql "INSERT INTO bench.raw VALUES ($j, pg_read_file('$WORK/answer$j.json'),
	                                   pg_read_file('$WORK/answer$j.json')::jsonb)" >/dev/null
done

say "2. decoding: the FDW and jsonb_to_recordset, in turn"
# in turn, so that both see the same machine (2 cores, shared); the first
# round only warms up
DEC_LABELS="ARRAY['fdw', 'jsonb_text', 'jsonb']"
DEC_QUERIES="ARRAY[\$q\$$FDW_Q\$q\$, 'SELECT count(x) FROM bench.raw_leads x',
                   'SELECT count(x) FROM bench.raw_leads_b x']"
sql "SELECT bench.time_rounds($DEC_LABELS, $DEC_QUERIES, 1); TRUNCATE bench.timings" >/dev/null
mockctl reset
sql "SELECT bench.time_rounds($DEC_LABELS, $DEC_QUERIES, $DECODE_REPS)" >/dev/null
read -r DEC_CALLS DEC_DESCRIBE DEC_ERRORS < <(mockctl calls)
CALLS_PER_QUERY=$(awk "BEGIN { printf \"%g\", $DEC_CALLS / $DECODE_REPS }")
MOCK_MS=$(mockctl server-ms "$MIN_CALLS")	# the last round's calls
IFS='|' read -r RAW_ROWS SAME < <(sql \
	"SELECT (SELECT count(*) FROM bench.raw_leads),
	        NOT EXISTS ((SELECT * FROM bench.leads_wide
	                      WHERE id = ANY (ARRAY(SELECT generate_series(1, $LEADS))))
	                    EXCEPT ALL SELECT * FROM bench.raw_leads)
	        AND NOT EXISTS (SELECT * FROM bench.raw_leads EXCEPT ALL
	                        SELECT * FROM bench.leads_wide
	                         WHERE id = ANY (ARRAY(SELECT generate_series(1, $LEADS))))")

median_ms() { sql "SELECT round(bench.median(array_agg(ms))::numeric, 2) FROM bench.timings WHERE label = '$1'"; }
median_of() { tr ' ' '\n' <<<"$1" | sort -g | awk '{ a[NR] = $1 } END { printf "%.2f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
FDW_MED=$(median_ms fdw)
JSONB_MED=$(median_ms jsonb_text)
JSONBB_MED=$(median_ms jsonb)
CURL_MED=$(median_of "${CURL_MS[*]}")
OWN_MED=$(awk "BEGIN { printf \"%.2f\", $FDW_MED - $CURL_MED }")
rows_s() { awk "BEGIN { printf \"%.0f\", $LEADS * 1000 / $1 }"; }

title "2. Decoding: $LEADS leads by id, 20 columns of every type, mock latency 0"
printf '%-52s %9s %10s %8s\n' "median of $DECODE_REPS runs each" "ms" "rows/s" "ratio"
printf '%-52s %9s %10s %8s\n' "jsonb_to_recordset(text::jsonb) (baseline)" "$JSONB_MED" "$(rows_s "$JSONB_MED")" "1.00"
printf '%-52s %9s %10s %8s\n' "FDW end to end (HTTP to the mock + decode)" "$FDW_MED" "$(rows_s "$FDW_MED")" "$(ratio "$JSONB_MED" "$FDW_MED")"
printf '%-52s %9s %10s %8s\n' "  of which: curl fetching the same answers (gzip)" "$CURL_MED" "" ""
printf '%-52s %9.2f %10s %8s\n' "  of which: mock building them (server side)" "$MOCK_MS" "" ""
printf '%-52s %9s %10s %8s\n' "FDW less the curl fetch (≈ the FDW's own work)" "$OWN_MED" "$(rows_s "$OWN_MED")" "$(ratio "$JSONB_MED" "$OWN_MED")"
printf '%-52s %9s %10s %8s\n' "jsonb_to_recordset(jsonb), JSON parsed beforehand" "$JSONBB_MED" "$(rows_s "$JSONBB_MED")" "$(ratio "$JSONB_MED" "$JSONBB_MED")"
printf '(ratio: rows/s against the baseline; above 1 is faster.  Same rows in both: %s, %s rows)\n' \
	"$([ "$SAME" = t ] && echo yes || echo NO)" "$RAW_ROWS"
printf 'API calls per query: %s (minimum ceil(%d/300) = %d) -> %s x the minimum' \
	"$CALLS_PER_QUERY" "$LEADS" "$MIN_CALLS" "$(ratio "$CALLS_PER_QUERY" "$MIN_CALLS")"
[ "$DEC_ERRORS" = "{}" ] && printf '\n' || printf '; errors: %s\n' "$DEC_ERRORS"

say "2. decoding: cost of the id list"
title "2b. Length of the id list: id column only, ceil(n/300) calls each"
printf '%-8s %6s %9s %10s %8s   %s\n' "ids" calls ms "ms/call" ratio "local = ANY recheck alone, ms"
for n in 300 1000 2500; do
	q="ARRAY['ids$n', 'recheck$n'], ARRAY[
	  'SELECT count(id) FROM bench.leads WHERE id = ANY (ARRAY(SELECT generate_series(1, $n)))',
	  'SELECT count(*) FROM generate_series(1, $n) g WHERE g = ANY (ARRAY(SELECT generate_series(1, $n)))']"
	sql "SELECT bench.time_rounds($q, 1); DELETE FROM bench.timings WHERE label LIKE '%$n';
	     SELECT bench.time_rounds($q, $DECODE_REPS)" >/dev/null
done
SCALE_BASE=""
for n in 300 1000 2500; do
	ms=$(median_ms "ids$n")
	calls=$(( (n + 299) / 300 ))
	per=$(awk "BEGIN { printf \"%.2f\", $ms / $calls }")
	[ -n "$SCALE_BASE" ] || SCALE_BASE=$per
	printf '%-8s %6s %9s %10s %8s   %s\n' "$n" "$calls" "$ms" "$per" "$(ratio "$per" "$SCALE_BASE")" "$(median_ms "recheck$n")"
done
printf '(ratio: ms per call against the 300-id list; 1.00 would be linear in the list length)\n'

# ---------------------------------------------------------------------------
# 3. Calls per lookup pattern
# ---------------------------------------------------------------------------
say "3. calls per lookup pattern"
title "3. API calls per lookup pattern (a new backend each: describe2 included)"
printf '%-58s %6s %6s %8s %6s\n' "query on leads_wide" rows calls minimum ratio
pattern() {		# pattern LABEL MINIMUM WHERE...
	local label=$1 min=$2 where=$3 rows calls describe errors
	mockctl reset
	rows=$(sql "SELECT count(*) FROM (SELECT id, email FROM bench.leads_wide WHERE $where) s")
	read -r calls describe errors < <(mockctl calls)
	printf '%-58s %6s %6s %8s %6s' "$label" "$rows" "$calls" "$min" "$(ratio "$calls" "$min")"
	[ "$errors" = "{}" ] && printf '\n' || printf '  errors: %s\n' "$errors"
}
pattern "email = 'lead7@example.com'" 1 "email = 'lead7@example.com'"
pattern "id = ANY (300 ids)" 1 "id = ANY (ARRAY(SELECT generate_series(1, 300)))"
pattern "id = ANY (301 ids)" 2 "id = ANY (ARRAY(SELECT generate_series(1, 301)))"
pattern "id = ANY (1000 ids)" 4 "id = ANY (ARRAY(SELECT generate_series(1, 1000)))"
pattern "id = ANY (1000 ids, each twice, and a NULL)" 4 \
	"id = ANY (ARRAY(SELECT g % 1000 + 1 FROM generate_series(0, 1999) g) || NULL::int)"
pattern "id = ANY (1000 ids) LIMIT 5" 1 \
	"id = ANY (ARRAY(SELECT generate_series(1, 1000))) LIMIT 5"
pattern "segment = 'enterprise' (650 leads: 3 pages + describe2)" 4 "segment = 'enterprise'"
printf '(minimum: ceil(distinct values / 300) calls, or the pages of the answer; describe2 is\n'
printf ' once per backend per day, so every new session of a segment lookup pays it)\n'
say "done"
