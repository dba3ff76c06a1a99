#!/usr/bin/env bash
# The demo: a throw-away PostgreSQL cluster that preloads marketo_fdw, the
# bundled mock Marketo with its sample leads, and a few real queries.
# Leaves both running so you can keep playing; prints how to stop them.
source "$(dirname "$0")/../test/lib.sh"

DEMO_PORT=${DEMO_PORT:-54329}
install_deps
build_install
make_workdir
start_mock 0
PGDATA="$WORK/demo-cluster"
BIN=$(pg_bindir)

say "creating a throw-away cluster in $PGDATA (port $DEMO_PORT)"
as_pg "$BIN/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
cat >>"$PGDATA/postgresql.conf" <<CONF
shared_preload_libraries = 'marketo_fdw'
port = $DEMO_PORT
listen_addresses = ''
unix_socket_directories = '$WORK'
CONF
as_pg "$BIN/pg_ctl" -D "$PGDATA" -l "$WORK/demo-cluster.log" -w start >/dev/null

psql_demo() { as_pg "$BIN/psql" -X -h "$WORK" -p "$DEMO_PORT" -U postgres -d postgres "$@"; }

psql_demo -q -v ON_ERROR_STOP=1 -v mock_url="$MARKETO_MOCK_URL" <<'SQL'
CREATE EXTENSION marketo_fdw;
CREATE SERVER mkto FOREIGN DATA WRAPPER marketo_fdw OPTIONS (base_url :'mock_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER mkto
  OPTIONS (client_id 'mock-client', client_secret 'mock-secret');
CREATE SCHEMA mkto;
IMPORT FOREIGN SCHEMA marketo FROM SERVER mkto INTO mkto;
CREATE SCHEMA crm;
CREATE TABLE crm.contacts (email text PRIMARY KEY, account_owner text);
INSERT INTO crm.contacts VALUES
  ('lead3@example.com', 'Ana'), ('lead4@example.com', 'Bo'),
  ('lead5@example.com', 'Cy'), ('lead42@example.com', 'Dee');
SQL

psql_demo <<'SQL'
\echo '--- 0. IMPORT FOREIGN SCHEMA made the tables from the instance describe (1 call)'
\d mkto.leads
\echo '--- 1. one lead by email (1 API call)'
SELECT id, email, first_name, last_name, lead_score, created_at
  FROM mkto.leads WHERE email = 'lead7@example.com';
\echo '--- 2. many leads by id: 500 ids in 2 calls of at most 300'
SELECT count(*) AS leads, round(avg(lead_score), 1) AS avg_score
  FROM mkto.leads WHERE id = ANY (ARRAY(SELECT generate_series(1, 500)));
\echo '--- 3. a report joining Marketo leads with the local CRM table (1 call)'
SELECT c.account_owner, l.id, l.first_name, l.company, l.unsubscribed
  FROM crm.contacts c JOIN mkto.leads l ON l.email = c.email
 WHERE l.email = ANY (ARRAY(SELECT email FROM crm.contacts))
 ORDER BY l.id;
\echo '--- 4. what the plan will spend'
EXPLAIN SELECT id FROM mkto.leads WHERE id = ANY (ARRAY(SELECT generate_series(1, 500)));
\echo '--- 5. the governor: calls spent against the instance limits'
SELECT instance, calls_today, daily_quota, window_calls, rate_limit, in_flight,
       max_concurrency, quota_resets_at
  FROM marketo_fdw_status();
SQL

cat >"$WORK/stop.sh" <<STOP
#!/usr/bin/env bash
runuser -u $RUN_USER -- "$BIN/pg_ctl" -D "$PGDATA" -m fast stop 2>/dev/null || "$BIN/pg_ctl" -D "$PGDATA" -m fast stop
pkill -f -- "--port-file $WORK/mock.port"
rm -rf "$WORK"
STOP
chmod +x "$WORK/stop.sh"
cat <<DONE

The demo cluster and the mock Marketo are still running.
  Keep playing:  psql -h $WORK -p $DEMO_PORT -U postgres postgres   (as root: runuser -u postgres -- psql ...)
  Stop it all:   bash $WORK/stop.sh
DONE
