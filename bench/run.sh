#!/usr/bin/env bash
# bench/run.sh — measure totpadm against the database's own command-line
# client doing the same work on the same data. See bench/README.md.
#
#   bench/run.sh                    # 1,000,000 users, 100,000 enrolled
#   bench/run.sh --users 100000     # quick run
#   TOTPADM_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable bench/run.sh
#
# Needs: go, sqlite3, /usr/bin/time (Debian package `time`), jq, and for
# the verify target hyperfine (else a median of repeated runs is taken);
# psql for PostgreSQL. Never part of `go test`.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: bench/run.sh [--users N] [--enroll N] [--repeat N] [--verify-runs N]
                    [--pg URL | --no-pg] [--sqlite-only] [--work DIR] [--keep]
                    [--baseline REV]

  --users N        users in the users table (default 1000000)
  --enroll N       users enrolled with 10 backup codes each (default users/10)
  --repeat N       runs of each read-only target and rounds of the SQLite
                   enroll target; the median is reported (default 3)
  --verify-runs N  timed runs of the verify target (default 30)
  --pg URL         PostgreSQL server to also benchmark (default $TOTPADM_TEST_POSTGRES);
                   the script creates and drops its own databases totpadm_bench*
  --no-pg          SQLite only
  --work DIR       scratch directory (default bench/work/run-USERS)
  --keep           keep the generated databases (default: delete them at the end)
  --baseline REV   also time SQLite enroll with totpadm built from git revision
                   REV (e.g. main), in the same rounds: before and after in one run
EOF
}

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
USERS=1000000
ENROLLED=""
REPEAT=3
VRUNS=30
PG="${TOTPADM_TEST_POSTGRES:-}"
WORK=""
KEEP=0
BASELINE=""
while [ $# -gt 0 ]; do
	case "$1" in
	--users) USERS="$2"; shift 2 ;;
	--enroll) ENROLLED="$2"; shift 2 ;;
	--repeat) REPEAT="$2"; shift 2 ;;
	--verify-runs) VRUNS="$2"; shift 2 ;;
	--pg) PG="$2"; shift 2 ;;
	--no-pg | --sqlite-only) PG=""; shift ;;
	--work) WORK="$2"; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--baseline) BASELINE="$2"; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
ENROLLED="${ENROLLED:-$((USERS / 10))}"
if [ "$ENROLLED" -lt 1 ] || [ "$ENROLLED" -gt "$USERS" ]; then
	echo "run.sh: --enroll must be 1..users" >&2
	exit 2
fi
STRIDE=$((USERS / ENROLLED)) # enrolled users are ids STRIDE, 2*STRIDE, … ENROLLED*STRIDE
LAST=$((STRIDE * ENROLLED))
WORK="${WORK:-$ROOT/bench/work/run-$USERS}"

for tool in go sqlite3 jq; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 5; }
done
if [ ! -x /usr/bin/time ]; then
	echo "run.sh: /usr/bin/time is required (apt-get install -y time)" >&2
	exit 5
fi
HYPERFINE="$(command -v hyperfine || true)"
if [ -n "$PG" ] && ! command -v psql >/dev/null; then
	echo "run.sh: psql not found; skipping PostgreSQL" >&2
	PG=""
fi

mkdir -p "$WORK"
W="$(cd "$WORK" && pwd)"
BIN="$ROOT/bench/work/totpadm"
GEN="$ROOT/bench/work/gen"
RESULTS="$W/results.tsv"
: >"$RESULTS"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

log "building totpadm and bench/gen"
(cd "$ROOT" && go build -o "$BIN" . && go build -o "$GEN" ./bench/gen)
BASE_BIN=""
if [ -n "$BASELINE" ]; then
	rev=$(git -C "$ROOT" rev-parse --short "$BASELINE^{commit}") || { echo "run.sh: --baseline $BASELINE is not a git revision" >&2; exit 2; }
	BASE_BIN="$ROOT/bench/work/totpadm-$rev"
	log "building totpadm at $BASELINE ($rev)"
	src=$(mktemp -d)
	git -C "$ROOT" archive "$rev" | tar -x -C "$src"
	(cd "$src" && go build -o "$BASE_BIN" .)
	rm -rf "$src"
	[ "$BASELINE" = "$rev" ] || BASELINE="$BASELINE ($rev)"
fi

KEY="$W/bench.key"
rm -f "$KEY"
"$BIN" keygen --out "$KEY" 2>/dev/null

# tot DB ARGS… runs totpadm on DB as it is run by hand.
tot() {
	local db="$1"
	shift
	"$BIN" --db "$db" --key-file "$KEY" --actor bench --user-email-column email "$@"
}

# measure NAME CMD… runs CMD under /usr/bin/time (stdin/stdout as the
# caller redirected them) and appends "NAME seconds kilobytes" to
# $W/measure.log; fails when CMD fails.
measure() {
	local name="$1"
	shift
	local tf="$W/time.$name"
	if [ "$1" = tot ]; then # the shell function, as a command /usr/bin/time can run
		local db="$2"
		shift 2
		set -- "$BIN" --db "$db" --key-file "$KEY" --actor bench --user-email-column email "$@"
	fi
	if ! /usr/bin/time -f '%e %M %U %S' -o "$tf" "$@"; then
		echo "run.sh: $name failed: $*" >&2
		tail -n 3 "$tf" >&2 || true
		return 1
	fi
	tail -n 1 "$tf" | awk -v n="$name" '{ printf "%s %s %s %.2f\n", n, $1, $2, $3 + $4 }' >>"$W/measure.log"
}

# median NAME: median wall seconds, max kilobytes and median CPU seconds
# (user + system) of NAME's measurements.
median() {
	local cpu
	cpu=$(awk -v n="$1" '$1 == n { print $4 }' "$W/measure.log" | sort -n | awk '{ c[NR] = $1 } END { print (NR ? c[int((NR + 1) / 2)] : "NA") }')
	awk -v n="$1" '$1 == n { print $2, $3 }' "$W/measure.log" | sort -n | awk -v cpu="$cpu" '
		{ s[NR] = $1; if ($2 > kb) kb = $2 }
		END { if (NR == 0) { print "NA NA NA"; exit } printf "%s %d %s\n", s[int((NR + 1) / 2)], kb, cpu }'
}

# row TARGET TOTNAME REFLABEL REFNAME GOAL: one line of the results table.
row() {
	local target="$1" totname="$2" reflabel="$3" refname="$4" goal="$5"
	local ts tk tc rs rk rc
	read -r ts tk tc <<<"$(median "$totname")"
	read -r rs rk rc <<<"$(median "$refname")"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$ts" "$reflabel" "$rs" "$goal" "$tk" "$rk" "$tc" "$rc" >>"$RESULTS"
}

# note TEXT: a line printed under the table.
note() { echo "$*" >>"$W/notes.txt"; }
: >"$W/measure.log"
: >"$W/notes.txt"

checkpoint() { sqlite3 "$1" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null; }

# copydb SRC DST copies a checkpointed SQLite database.
copydb() {
	rm -f "$2" "$2-wal" "$2-shm"
	checkpoint "$1"
	cp "$1" "$2"
	chmod 600 "$2"
}

# Logins of the enrolled users, one a line: the --from-file input.
awk -v n="$ENROLLED" -v s="$STRIDE" 'BEGIN { for (i = 1; i <= n; i++) print "user" i * s }' >"$W/enroll.txt"
VUSER="user$STRIDE" # the user verify runs against
VID="$STRIDE"

# Status: the reference query is the one EachStatus runs, with the state
# and the RFC 3339 times computed in SQL so that the output is the same.
SQLITE_NOW="strftime('%Y-%m-%d %H:%M:%f+00:00','now')"
sqlite_ts() { echo "strftime('%Y-%m-%dT%H:%M:%SZ', $1)"; }
SQLITE_STATUS="SELECT CAST(u.id AS TEXT) AS id, u.username AS login, u.email AS email,
 CASE WHEN c.user_id IS NULL THEN 'disabled' WHEN c.locked_until > $SQLITE_NOW THEN 'locked'
      WHEN c.state = 'pending' THEN 'pending' ELSE 'enabled' END AS state,
 (SELECT COUNT(*) FROM totp_backup_codes b WHERE b.user_id = c.user_id AND b.used_at IS NULL) AS backup_codes_left,
 $(sqlite_ts c.created_at) AS enrolled_at, $(sqlite_ts c.last_used_at) AS last_used_at,
 COALESCE(c.failures, 0) AS failures,
 CASE WHEN c.locked_until > $SQLITE_NOW THEN $(sqlite_ts c.locked_until) END AS locked_until,
 (SELECT CASE WHEN t.expires_at > $SQLITE_NOW THEN $(sqlite_ts t.expires_at) END FROM totp_temp_codes t
   WHERE t.user_id = c.user_id AND t.used_at IS NULL) AS temp_code_until
FROM users u LEFT JOIN totp_credentials c ON c.user_id = CAST(u.id AS TEXT)
ORDER BY u.id;"

# Realistic states after a bulk --no-confirm enrollment: 90 % of the
# enrolled users active and used, 1 % locked out, 2 % of codes used.
# k is the user's index among the enrolled (1, 2, …); k = 1 (the verify
# user) stays active and unlocked.
tweak_sql() { # $1: SQL casting user_id to an integer; $2: locked_until value; $3: true literal
	cat <<EOF
BEGIN;
UPDATE totp_credentials SET state = 'active', activated_at = created_at, last_used_at = created_at, last_step = 0
  WHERE ($1 / $STRIDE) % 10 <> 5;
UPDATE totp_credentials SET failures = 5, locked_until = $2 WHERE ($1 / $STRIDE) % 100 = 7;
UPDATE totp_backup_codes SET used_at = created_at WHERE id % 50 = 0;
COMMIT;
EOF
}

# ---------------------------------------------------------------- SQLite
sqlite_bench() {
	log "SQLite: building $USERS users"
	local base="$W/base.db"
	rm -f "$base" "$base-wal" "$base-shm"
	install -m 600 /dev/null "$base"
	local t0=$SECONDS
	sqlite3 "$base" >/dev/null <<EOF
PRAGMA journal_mode = WAL;
CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT UNIQUE NOT NULL, email TEXT);
BEGIN;
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $USERS)
INSERT INTO users SELECT i, 'user' || i, 'user' || i || '@example.com' FROM s;
COMMIT;
EOF
	tot "$base" migrate >/dev/null
	log "SQLite: users table built in $((SECONDS - t0)) s"

	# ---- 2. enroll
	# Each round: totpadm (and the --baseline binary) on fresh copies of
	# the users database, then the engine's floor — sqlite3 copying the
	# rows totpadm wrote (credentials, backup codes, audit rows) with one
	# INSERT … SELECT transaction from the attached file — interleaved, so
	# that a noisy machine slows them alike. The last round's database
	# and output go on to the status, verify and disable targets.
	log "SQLite: enroll $ENROLLED users ($REPEAT rounds of totpadm$([ -n "$BASE_BIN" ] && echo ", $BASELINE") and the floor)"
	local i ok
	for i in $(seq 1 "$REPEAT"); do
		copydb "$base" "$W/enroll.db"
		measure sqlite.enroll.tot tot "$W/enroll.db" enroll --from-file - --no-confirm -o json <"$W/enroll.txt" >"$W/enroll.json"
		ok=$(grep -c '"outcome":"enrolled"' "$W/enroll.json" || true)
		[ "$ok" -eq "$ENROLLED" ] || { echo "run.sh: enroll reported $ok of $ENROLLED enrolled" >&2; exit 1; }
		checkpoint "$W/enroll.db"
		if [ -n "$BASE_BIN" ]; then
			copydb "$base" "$W/base-enroll.db"
			measure sqlite.enroll.base "$BASE_BIN" --db "$W/base-enroll.db" --key-file "$KEY" --actor bench --user-email-column email \
				enroll --from-file - --no-confirm -o json <"$W/enroll.txt" >/dev/null
			rm -f "$W/base-enroll.db"*
		fi
		copydb "$base" "$W/floor-enroll.db"
		measure sqlite.enroll.floor sqlite3 -bail "$W/floor-enroll.db" "ATTACH '$W/enroll.db' AS src; BEGIN IMMEDIATE;
			INSERT INTO totp_credentials SELECT * FROM src.totp_credentials;
			INSERT INTO totp_backup_codes SELECT * FROM src.totp_backup_codes;
			INSERT INTO totp_audit_log SELECT * FROM src.totp_audit_log; COMMIT;"
		rm -f "$W/floor-enroll.db"*
	done
	# For information, the same rows as one INSERT a row, as sqlite3's own
	# .dump writes them, in one transaction (once: it is slow).
	copydb "$base" "$W/ref-enroll.db"
	{
		echo 'BEGIN IMMEDIATE;'
		sqlite3 "$W/enroll.db" \
			'.mode insert totp_credentials' 'SELECT * FROM totp_credentials;' \
			'.mode insert totp_backup_codes' 'SELECT * FROM totp_backup_codes;' \
			'.mode insert totp_audit_log' 'SELECT * FROM totp_audit_log;'
		echo 'COMMIT;'
	} >"$W/enroll-ref.sql"
	log "SQLite: enroll reference (sqlite3, $(du -h "$W/enroll-ref.sql" | cut -f1) of INSERTs)"
	measure sqlite.enroll.ref sqlite3 -bail "$W/ref-enroll.db" <"$W/enroll-ref.sql" >/dev/null
	local a b
	a=$(sqlite3 "$W/enroll.db" 'SELECT COUNT(*) FROM totp_credentials; SELECT COUNT(*) FROM totp_backup_codes;' | tr '\n' ' ')
	b=$(sqlite3 "$W/ref-enroll.db" 'SELECT COUNT(*) FROM totp_credentials; SELECT COUNT(*) FROM totp_backup_codes;' | tr '\n' ' ')
	[ "$a" = "$b" ] || { echo "run.sh: enroll reference row counts differ: $a vs $b" >&2; exit 1; }
	row "enroll $ENROLLED (-o json)" sqlite.enroll.tot "sqlite3: INSERT…SELECT floor" sqlite.enroll.floor "≤ 3×"
	[ -n "$BASE_BIN" ] && row "  enroll, $BASELINE (--baseline)" sqlite.enroll.base "sqlite3: INSERT…SELECT floor" sqlite.enroll.floor "-"
	row "  (informational)" sqlite.enroll.tot "sqlite3: INSERT dump, 1 txn" sqlite.enroll.ref "-"
	rm -f "$W/ref-enroll.db"* "$W/enroll-ref.sql"

	# ---- status database: the enrolled one, with realistic states
	local db="$W/status.db"
	rm -f "$db" "$db-wal" "$db-shm"
	mv "$W/enroll.db" "$db"
	rm -f "$W/enroll.db-wal" "$W/enroll.db-shm"
	sqlite3 "$db" "$(tweak_sql 'CAST(user_id AS INTEGER)' "replace(created_at, substr(created_at, 1, 4), '2099')")"
	checkpoint "$db"
	# A tenth of it, to see that memory does not grow with the table.
	local small="$W/small.db" sn=$((USERS / 10))
	rm -f "$small"*
	install -m 600 /dev/null "$small"
	sqlite3 "$small" 'PRAGMA journal_mode = WAL; CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT UNIQUE NOT NULL, email TEXT);' >/dev/null
	tot "$small" migrate >/dev/null
	sqlite3 "$small" "ATTACH '$db' AS s; BEGIN;
		INSERT INTO users SELECT * FROM s.users WHERE id <= $sn;
		INSERT INTO totp_credentials SELECT * FROM s.totp_credentials WHERE CAST(user_id AS INTEGER) <= $sn;
		INSERT INTO totp_backup_codes SELECT * FROM s.totp_backup_codes WHERE CAST(user_id AS INTEGER) <= $sn; COMMIT;"
	checkpoint "$small"

	# ---- 1. status
	log "SQLite: status over $USERS users ($REPEAT runs each)"
	cat "$db" >/dev/null # warm the page cache for everyone alike
	local i
	for i in $(seq 1 "$REPEAT"); do
		measure sqlite.status.ref.csv sqlite3 -csv -header "$db" "$SQLITE_STATUS" >"$W/status-ref.csv"
		measure sqlite.status.tot.csv tot "$db" status -o csv >"$W/status.csv"
		measure sqlite.status.ref.json sqlite3 -json "$db" "$SQLITE_STATUS" >"$W/status-ref.json"
		measure sqlite.status.tot.json tot "$db" status -o json >"$W/status.json"
		measure sqlite.status.tot.table tot "$db" status >"$W/status.txt"
		measure sqlite.status.ref.small sqlite3 -csv -header "$small" "$SQLITE_STATUS" >/dev/null
		measure sqlite.status.tot.small tot "$small" status -o csv >/dev/null
	done
	if cmp -s "$W/status.csv" "$W/status-ref.csv"; then
		note "SQLite status -o csv output is byte-identical to the sqlite3 reference ($(wc -l <"$W/status.csv") lines)."
	else
		note "SQLite status -o csv differs from the reference: $(diff "$W/status.csv" "$W/status-ref.csv" | grep -c '^[<>]') differing lines (first: $(diff "$W/status.csv" "$W/status-ref.csv" | sed -n 2p | cut -c1-120))"
	fi
	local jl
	jl=$(grep -c '{' "$W/status-ref.json" || true)
	[ "$(wc -l <"$W/status.json")" -eq "$USERS" ] && [ "$jl" -eq "$USERS" ] ||
		note "SQLite status -o json: $(wc -l <"$W/status.json") lines vs $jl objects from sqlite3 -json"
	row "status $USERS users -o csv" sqlite.status.tot.csv "sqlite3 -csv (same join)" sqlite.status.ref.csv "≤ 1.3×, ≤ 64 MiB"
	row "status $USERS users -o json" sqlite.status.tot.json "sqlite3 -json (same join)" sqlite.status.ref.json "≤ 1.3×, ≤ 64 MiB"
	row "status $USERS users (table)" sqlite.status.tot.table "sqlite3 -csv (same join)" sqlite.status.ref.csv "-"
	row "status $sn users -o csv (RSS flat?)" sqlite.status.tot.small "sqlite3 -csv (same join)" sqlite.status.ref.small "RSS = 1M run"
	rm -f "$W/status.csv" "$W/status-ref.csv" "$W/status.json" "$W/status-ref.json" "$W/status.txt"

	# ---- 4. verify
	sqlite_verify "$db"

	# ---- 3. disable
	log "SQLite: disable $ENROLLED users"
	copydb "$db" "$W/disable.db"
	copydb "$db" "$W/ref-disable.db"
	measure sqlite.disable.tot tot "$W/disable.db" disable --from-file - --yes --reason bench <"$W/enroll.txt" >"$W/disable.out"
	measure sqlite.disable.ref sqlite3 -bail "$W/ref-disable.db" "BEGIN IMMEDIATE;
		INSERT INTO totp_audit_log (at, actor, host, action, user_id, user_login, outcome, reason)
		  SELECT $SQLITE_NOW, 'bench', 'host', 'disable', c.user_id, u.username, 'disabled', 'bench'
		  FROM totp_credentials c JOIN users u ON c.user_id = CAST(u.id AS TEXT)
		  WHERE u.id % $STRIDE = 0 AND u.id <= $LAST;
		DELETE FROM totp_backup_codes WHERE user_id IN (SELECT CAST(id AS TEXT) FROM users WHERE id % $STRIDE = 0 AND id <= $LAST);
		DELETE FROM totp_credentials WHERE user_id IN (SELECT CAST(id AS TEXT) FROM users WHERE id % $STRIDE = 0 AND id <= $LAST);
		COMMIT;"
	a=$(sqlite3 "$W/disable.db" 'SELECT COUNT(*) FROM totp_credentials; SELECT COUNT(*) FROM totp_backup_codes;' | tr '\n' ' ')
	b=$(sqlite3 "$W/ref-disable.db" 'SELECT COUNT(*) FROM totp_credentials; SELECT COUNT(*) FROM totp_backup_codes;' | tr '\n' ' ')
	[ "$a" = "0 0 " ] && [ "$b" = "0 0 " ] || note "SQLite disable left rows: totpadm $a, reference $b"
	row "disable $ENROLLED users" sqlite.disable.tot "sqlite3: DELETE … IN (SELECT …)" sqlite.disable.ref "≤ 3×"
	rm -f "$W/disable.db"* "$W/ref-disable.db"* "$W/disable.out"
}

# vcode: "CODE STEP" for the verify user, now.
vcode() {
	local secret
	secret=$(jq -r --arg l "$VUSER" 'select(.login == $l) | .secret' "$W/enroll.json")
	"$GEN" code "$secret"
}

# timed_runs NAME N PREPARE CMD: N runs of CMD (a shell string), each
# after PREPARE, through hyperfine when present; records the median.
timed_runs() {
	local name="$1" n="$2" prepare="$3" cmd="$4"
	if [ -n "$HYPERFINE" ]; then
		"$HYPERFINE" -N --style none --warmup 3 --runs "$n" --prepare "$prepare" \
			--export-json "$W/hf.$name.json" "$cmd" >/dev/null 2>"$W/hf.$name.err" || {
			cat "$W/hf.$name.err" >&2
			return 1
		}
		jq -r --arg n "$name" '.results[0] | "\($n) \(.median) 0 \(.user + .system)"' "$W/hf.$name.json" >>"$W/measure.log"
	else
		local i s e
		for i in $(seq 1 "$n"); do
			bash -c "$prepare" >/dev/null
			s=$(date +%s.%N)
			bash -c "$cmd" >/dev/null
			e=$(date +%s.%N)
			echo "$name $(awk -v s="$s" -v e="$e" 'BEGIN { print e - s }') 0 NA" >>"$W/measure.log"
		done
	fi
}

# verify_row BACKEND REFLABEL: times from hyperfine, RSS from the extra run.
verify_row() {
	local ts tk tc rs rk rc
	read -r ts _ tc <<<"$(median "$1.verify.tot")"
	read -r rs _ rc <<<"$(median "$1.verify.ref")"
	read -r _ tk _ <<<"$(median "$1.verify.rss.tot")"
	read -r _ rk _ <<<"$(median "$1.verify.rss.ref")"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "verify (process, $USERS users)" "$ts" "$2" "$rs" "≤ 3×" "$tk" "$rk" "$tc" "$rc" >>"$RESULTS"
}

sqlite_verify() {
	local db="$1" code step
	log "SQLite: verify on $USERS users ($VRUNS runs)"
	local reset="sqlite3 $db \"UPDATE totp_credentials SET last_step = -1, failures = 0, locked_until = NULL WHERE user_id = '$VID'\""
	read -r code step <<<"$(vcode)"
	cat >"$W/verify-ref.sql" <<EOF
.bail on
.timeout 10000
SELECT MAX(version) FROM totp_schema_version;
SELECT CAST(u.id AS TEXT), u.username, u.email FROM users u WHERE u.username = '$VUSER';
BEGIN IMMEDIATE;
SELECT * FROM totp_credentials WHERE user_id = '$VID';
UPDATE totp_credentials SET last_step = $step, last_used_at = $SQLITE_NOW, failures = 0, locked_until = NULL,
  state = 'active', activated_at = COALESCE(activated_at, $SQLITE_NOW)
  WHERE user_id = '$VID' AND last_step < $step;
INSERT INTO totp_audit_log (at, actor, host, action, user_id, user_login, outcome, reason)
  VALUES ($SQLITE_NOW, 'bench', 'host', 'verify', '$VID', '$VUSER', 'ok', '');
COMMIT;
EOF
	local vcmd="$BIN --db $db --key-file $KEY --actor bench verify $VUSER $code"
	timed_runs sqlite.verify.ref "$VRUNS" "$reset" "sqlite3 $db '.read $W/verify-ref.sql'"
	timed_runs sqlite.verify.tot "$VRUNS" "$reset" "$vcmd"
	# One more of each for the peak RSS, and to see that the code is accepted.
	bash -c "$reset"
	read -r code step <<<"$(vcode)"
	measure sqlite.verify.rss.tot "$BIN" --db "$db" --key-file "$KEY" --actor bench verify "$VUSER" "$code" >/dev/null
	bash -c "$reset"
	measure sqlite.verify.rss.ref sqlite3 "$db" ".read $W/verify-ref.sql" >/dev/null
	timed_runs sqlite.startup.tot "$VRUNS" "true" "$BIN --help"
	timed_runs sqlite.startup.ref "$VRUNS" "true" "sqlite3 :memory: 'SELECT 1'"
	verify_row sqlite "sqlite3: select + cond. update"
	row "  (informational) process start" sqlite.startup.tot "sqlite3 :memory: 'SELECT 1'" sqlite.startup.ref "-"
}

# ---------------------------------------------------------------- PostgreSQL
pg_url() { # DBNAME: the --pg URL with its database replaced
	local pre="${PG%%\?*}" q=""
	[[ "$PG" == *\?* ]] && q="?${PG#*\?}"
	echo "${pre%/*}/$1$q"
}

pg_bench() {
	local main ref d1 d2
	main=$(pg_url totpadm_bench)
	ref=$(pg_url totpadm_bench_ref)
	d1=$(pg_url totpadm_bench_d1)
	d2=$(pg_url totpadm_bench_d2)
	local P=(psql -X -q -v ON_ERROR_STOP=1)
	export PGOPTIONS="-c client_min_messages=warning"
	pg_drop() { "${P[@]}" "$PG" -c "DROP DATABASE IF EXISTS totpadm_bench WITH (FORCE)" -c "DROP DATABASE IF EXISTS totpadm_bench_ref WITH (FORCE)" \
		-c "DROP DATABASE IF EXISTS totpadm_bench_d1 WITH (FORCE)" -c "DROP DATABASE IF EXISTS totpadm_bench_d2 WITH (FORCE)"; }
	log "PostgreSQL: building $USERS users in database totpadm_bench"
	pg_drop
	"${P[@]}" "$PG" -c "CREATE DATABASE totpadm_bench"
	local t0=$SECONDS
	"${P[@]}" "$main" -c "CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT UNIQUE NOT NULL, email TEXT)" \
		-c "INSERT INTO users SELECT i, 'user' || i, 'user' || i || '@example.com' FROM generate_series(1, $USERS) i" \
		-c "VACUUM ANALYZE users"
	tot "$main" migrate >/dev/null
	log "PostgreSQL: users table built in $((SECONDS - t0)) s"
	"${P[@]}" "$PG" -c "CREATE DATABASE totpadm_bench_ref TEMPLATE totpadm_bench"

	# ---- 2. enroll
	log "PostgreSQL: enroll $ENROLLED users"
	measure pg.enroll.tot tot "$main" enroll --from-file - --no-confirm -o json <"$W/enroll.txt" >"$W/enroll.json"
	local ok
	ok=$(grep -c '"outcome":"enrolled"' "$W/enroll.json" || true)
	[ "$ok" -eq "$ENROLLED" ] || { echo "run.sh: PostgreSQL enroll reported $ok of $ENROLLED enrolled" >&2; exit 1; }
	local t
	for t in totp_credentials totp_backup_codes totp_audit_log; do
		"${P[@]}" "$main" -c "\\copy $t TO '$W/$t.csv' csv"
	done
	{
		for t in totp_credentials totp_backup_codes totp_audit_log; do
			echo "\\copy $t FROM '$W/$t.csv' csv"
		done
	} >"$W/enroll-ref.psql"
	log "PostgreSQL: enroll reference (psql \\copy of the same rows, 1 txn)"
	measure pg.enroll.ref "${P[@]}" -1 "$ref" -f "$W/enroll-ref.psql"
	# The same rows as multi-row INSERTs (what totpadm sends, minus the
	# round trips for bound parameters): pg_dump --inserts, 1 txn.
	if command -v pg_dump >/dev/null; then
		pg_dump --data-only --inserts --rows-per-insert=500 -t totp_credentials -t totp_backup_codes -t totp_audit_log "$main" |
			grep -v -e '^SELECT pg_catalog.setval' >"$W/enroll-ref-inserts.sql"
		"${P[@]}" "$ref" -c "TRUNCATE totp_credentials, totp_backup_codes, totp_audit_log"
		measure pg.enroll.ref2 "${P[@]}" -1 "$ref" -f "$W/enroll-ref-inserts.sql" >/dev/null
		rm -f "$W/enroll-ref-inserts.sql"
	fi
	rm -f "$W"/totp_*.csv
	row "enroll $ENROLLED (-o json)" pg.enroll.tot "psql: \\copy same rows, 1 txn" pg.enroll.ref "≤ 3×"
	row "  (informational)" pg.enroll.tot "psql: 500-row INSERTs, 1 txn" pg.enroll.ref2 "-"
	"${P[@]}" "$PG" -c "DROP DATABASE totpadm_bench_ref WITH (FORCE)"

	"${P[@]}" "$main" -c "$(tweak_sql 'user_id::bigint' "now() + interval '100 years'")" -c "VACUUM ANALYZE"

	# ---- 1. status
	local q
	q=$(pg_status_query | tr '\n' ' ')
	log "PostgreSQL: status over $USERS users ($REPEAT runs each)"
	local i
	for i in $(seq 1 "$REPEAT"); do
		measure pg.status.ref.csv "${P[@]}" "$main" -c "\\copy ($q) TO STDOUT csv header" >"$W/status-ref.csv"
		measure pg.status.tot.csv tot "$main" status -o csv >"$W/status.csv"
		measure pg.status.ref.json "${P[@]}" "$main" -c "\\copy (SELECT row_to_json(q) FROM ($q) q) TO STDOUT" >"$W/status-ref.json"
		measure pg.status.tot.json tot "$main" status -o json >"$W/status.json"
	done
	[ "$(wc -l <"$W/status.json")" -eq "$(wc -l <"$W/status-ref.json")" ] ||
		note "PostgreSQL status -o json: $(wc -l <"$W/status.json") lines vs $(wc -l <"$W/status-ref.json") from row_to_json"
	if cmp -s "$W/status.csv" "$W/status-ref.csv"; then
		note "PostgreSQL status -o csv output is byte-identical to the psql reference ($(wc -l <"$W/status.csv") lines)."
	else
		note "PostgreSQL status -o csv differs from the reference: $(diff "$W/status.csv" "$W/status-ref.csv" | grep -c '^[<>]') differing lines (first: $(diff "$W/status.csv" "$W/status-ref.csv" | sed -n 2p | cut -c1-120))"
	fi
	row "status $USERS users -o csv" pg.status.tot.csv "psql \\copy (same join) csv" pg.status.ref.csv "≤ 1.3×, ≤ 64 MiB"
	row "status $USERS users -o json" pg.status.tot.json "psql \\copy (row_to_json of same join)" pg.status.ref.json "≤ 1.3×, ≤ 64 MiB"
	rm -f "$W/status.csv" "$W/status-ref.csv" "$W/status.json" "$W/status-ref.json"

	# ---- 4. verify
	log "PostgreSQL: verify ($VRUNS runs)"
	local reset="psql -X -q $main -c \"UPDATE totp_credentials SET last_step = -1, failures = 0, locked_until = NULL WHERE user_id = '$VID'\""
	local code step
	read -r code step <<<"$(vcode)"
	cat >"$W/verify-ref-pg.sql" <<EOF
SELECT MAX(version) FROM totp_schema_version;
SELECT CAST(u.id AS TEXT), u.username, u.email FROM users u WHERE u.username = '$VUSER';
BEGIN;
SELECT * FROM totp_credentials WHERE user_id = '$VID' FOR UPDATE;
UPDATE totp_credentials SET last_step = $step, last_used_at = now(), failures = 0, locked_until = NULL,
  state = 'active', activated_at = COALESCE(activated_at, now())
  WHERE user_id = '$VID' AND last_step < $step;
INSERT INTO totp_audit_log (at, actor, host, action, user_id, user_login, outcome, reason)
  VALUES (now(), 'bench', 'host', 'verify', '$VID', '$VUSER', 'ok', '');
COMMIT;
EOF
	timed_runs pg.verify.ref "$VRUNS" "$reset" "psql -X -q -v ON_ERROR_STOP=1 $main -f $W/verify-ref-pg.sql"
	timed_runs pg.verify.tot "$VRUNS" "$reset" "$BIN --db $main --key-file $KEY --actor bench verify $VUSER $code"
	bash -c "$reset"
	read -r code step <<<"$(vcode)"
	measure pg.verify.rss.tot "$BIN" --db "$main" --key-file "$KEY" --actor bench verify "$VUSER" "$code" >/dev/null
	measure pg.verify.rss.ref psql -X -q "$main" -f "$W/verify-ref-pg.sql" >/dev/null
	verify_row pg "psql: select + cond. update"

	# ---- 3. disable
	log "PostgreSQL: disable $ENROLLED users"
	"${P[@]}" "$PG" -c "CREATE DATABASE totpadm_bench_d1 TEMPLATE totpadm_bench" -c "CREATE DATABASE totpadm_bench_d2 TEMPLATE totpadm_bench"
	"${P[@]}" "$d1" -c "ANALYZE"
	"${P[@]}" "$d2" -c "ANALYZE"
	measure pg.disable.tot tot "$d1" disable --from-file - --yes --reason bench <"$W/enroll.txt" >"$W/disable.out"
	measure pg.disable.ref "${P[@]}" -1 "$d2" \
		-c "INSERT INTO totp_audit_log (at, actor, host, action, user_id, user_login, outcome, reason)
		  SELECT now(), 'bench', 'host', 'disable', c.user_id, u.username, 'disabled', 'bench'
		  FROM totp_credentials c JOIN users u ON c.user_id = u.id::text WHERE u.id % $STRIDE = 0 AND u.id <= $LAST" \
		-c "DELETE FROM totp_backup_codes WHERE user_id IN (SELECT id::text FROM users WHERE id % $STRIDE = 0 AND id <= $LAST)" \
		-c "DELETE FROM totp_credentials WHERE user_id IN (SELECT id::text FROM users WHERE id % $STRIDE = 0 AND id <= $LAST)"
	local a b
	a=$(psql -X -At "$d1" -c "SELECT (SELECT COUNT(*) FROM totp_credentials) || ' ' || (SELECT COUNT(*) FROM totp_backup_codes)")
	b=$(psql -X -At "$d2" -c "SELECT (SELECT COUNT(*) FROM totp_credentials) || ' ' || (SELECT COUNT(*) FROM totp_backup_codes)")
	[ "$a" = "0 0" ] && [ "$b" = "0 0" ] || note "PostgreSQL disable left rows: totpadm $a, reference $b"
	row "disable $ENROLLED users" pg.disable.tot "psql: DELETE … IN (SELECT …)" pg.disable.ref "≤ 3×"
	rm -f "$W/disable.out"
	[ "$KEEP" = 1 ] || pg_drop
}

pg_status_query() {
	local now="now()"
	pg_ts() { echo "to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"; }
	cat <<EOF
SELECT CAST(u.id AS TEXT) AS id, u.username AS login, u.email AS email,
 CASE WHEN c.user_id IS NULL THEN 'disabled' WHEN c.locked_until > $now THEN 'locked'
      WHEN c.state = 'pending' THEN 'pending' ELSE 'enabled' END AS state,
 (SELECT COUNT(*) FROM totp_backup_codes b WHERE b.user_id = c.user_id AND b.used_at IS NULL) AS backup_codes_left,
 $(pg_ts c.created_at) AS enrolled_at, $(pg_ts c.last_used_at) AS last_used_at,
 COALESCE(c.failures, 0) AS failures,
 CASE WHEN c.locked_until > $now THEN $(pg_ts c.locked_until) END AS locked_until,
 (SELECT CASE WHEN t.expires_at > $now THEN $(pg_ts t.expires_at) END FROM totp_temp_codes t
   WHERE t.user_id = c.user_id AND t.used_at IS NULL) AS temp_code_until
FROM users u LEFT JOIN totp_credentials c ON c.user_id = CAST(u.id AS TEXT)
ORDER BY u.id
EOF
}

# ---------------------------------------------------------------- report
print_table() { # BACKEND
	echo
	echo "### $1 — $USERS users, $ENROLLED enrolled × 10 backup codes"
	echo
	echo "| target | totpadm s | reference | ref s | ratio | goal | totpadm CPU s | ref CPU s | CPU ratio | totpadm peak RSS | ref peak RSS |"
	echo "|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|"
	awk -F '\t' '
		function mib(kb) { return (kb == "" || kb == "NA" || kb == 0) ? "-" : sprintf("%.1f MiB", kb / 1024) }
		function sec(s) { return (s == "NA" || s == "") ? "-" : (s < 1 ? sprintf("%.4f", s) : sprintf("%.2f", s)) }
		function ratio(a, b) { return (a != "NA" && b != "NA" && a != "" && b != "" && b > 0) ? sprintf("%.2f×", a / b) : "-" }
		{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, sec($2), $3, sec($4), ratio($2, $4), $5,
		    sec($8), sec($9), ratio($8, $9), mib($6), mib($7) }' "$2"
}

START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sqlite_bench
cp "$RESULTS" "$W/results-sqlite.tsv"
: >"$RESULTS"
if [ -n "$PG" ]; then
	pg_bench
	cp "$RESULTS" "$W/results-pg.tsv"
fi

{
	echo "## totpadm benchmark, $START"
	echo
	echo "machine: $(nproc) cores, $(free -h | awk '/^Mem:/ { print $2 }') RAM; $(go version | cut -d' ' -f3-); sqlite3 $(sqlite3 --version | cut -d' ' -f1)$([ -n "$PG" ] && echo "; $(psql -X -At "$PG" -c 'SHOW server_version' 2>/dev/null | sed 's/^/PostgreSQL /')")"
	echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	print_table SQLite "$W/results-sqlite.tsv"
	[ -n "$PG" ] && print_table PostgreSQL "$W/results-pg.tsv"
	echo
	echo "Times are medians ($REPEAT runs for status and SQLite enroll, $VRUNS for verify via $([ -n "$HYPERFINE" ] && echo hyperfine || echo "a shell loop"); one run for PostgreSQL enroll and for disable)."
	echo "CPU is user + system time of the client process only (for PostgreSQL the server's work is not in it)."
	echo "Peak RSS is /usr/bin/time's maximum resident set size."
	sed 's/^/- /' "$W/notes.txt"
} | tee "$W/report.md"

if [ "$KEEP" != 1 ]; then
	rm -f "$W"/*.db "$W"/*.db-wal "$W"/*.db-shm
fi
