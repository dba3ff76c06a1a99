# Shared steps of the demo and the test run: dependencies, build, a work
# directory the postgres user can write, and the mock Marketo.
# Sourced by test/run.sh and demo/run.sh; not run on its own.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
PACKAGES="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libcurl4-openssl-dev
  libjson-c-dev libipc-run-perl pkg-config make gcc curl python3"

say() { printf '==> %s\n' "$*" >&2; }

# Install what is missing (root only; anyone else must have it already).
install_deps() {
	local missing=""
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		say "missing packages:$missing (run as root to install them)"
		exit 1
	fi
	say "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

pg_bindir() { "$(pg_config_path)" --bindir; }
pg_config_path() {
	if [ -x "/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" ]; then
		echo "/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
	else
		command -v pg_config
	fi
}

build_install() {
	say "building and installing marketo_fdw"
	make -C "$ROOT" -s PG_CONFIG="$(pg_config_path)" clean >/dev/null
	make -C "$ROOT" -s PG_CONFIG="$(pg_config_path)"
	if [ "$(id -u)" = 0 ]; then
		make -C "$ROOT" -s PG_CONFIG="$(pg_config_path)" install >/dev/null
	else
		sudo make -C "$ROOT" -s PG_CONFIG="$(pg_config_path)" install >/dev/null
	fi
}

# PostgreSQL refuses to run as root: clusters and pg_regress run as
# postgres, in a copy of the tree that postgres owns.
RUN_USER=$(id -un)
[ "$RUN_USER" = root ] && RUN_USER=postgres
as_pg() {
	if [ "$(id -un)" = "$RUN_USER" ]; then
		env "$@"
	else
		runuser -u "$RUN_USER" -- env "$@"
	fi
}

make_workdir() {
	WORK=$(mktemp -d /tmp/marketo_fdw.XXXXXX)
	cp -a "$ROOT/." "$WORK/"
	rm -rf "$WORK/.git"
	chown -R "$RUN_USER" "$WORK"
	chmod 755 "$WORK"
}

# start_mock PORT [mock options]: PORT 0 picks a free one
start_mock() {
	local port=$1 portfile="$WORK/mock.port"
	shift
	say "starting the mock Marketo"
	rm -f "$portfile"
	as_pg setsid python3 "$WORK/test/mock_marketo.py" --port "$port" --port-file "$portfile" \
		--log-file "$WORK/mock-calls.log" "$@" >"$WORK/mock.out" 2>&1 &
	for _ in $(seq 100); do
		[ -s "$portfile" ] && break
		sleep 0.1
	done
	[ -s "$portfile" ] || { cat "$WORK/mock.out" >&2; say "mock did not start"; exit 1; }
	MARKETO_MOCK_URL="http://127.0.0.1:$(cat "$portfile")"
	export MARKETO_MOCK_URL
}

# the mock runs in its own session (it outlives the demo script), so it is
# found by its port file, unique to this work directory
stop_mock() {
	pkill -f -- "--port-file $WORK/mock.port" 2>/dev/null || true
}
