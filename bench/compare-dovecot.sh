#!/usr/bin/env bash
# Side-by-side benchmark of postfach and Dovecot on this machine (issue 6).
#
#   sudo bench/compare-dovecot.sh [--quick] [--out DIR] [--only LIST] [--worktree] [--profile]
#                                 [--baseline REV]
#
# Installs Debian's dovecot-imapd, dovecot-pop3d and dovecot-lmtpd if missing,
# builds postfach and postfach-bench, starts a private Dovecot (config:
# bench/dovecot/dovecot.conf.in) and postfach on loopback ports with the same
# users and the same generated corpus, runs every load against both, one after
# the other, and prints a table of both figures and their ratio. Results go to
# DIR (default bench/results/DATE): results.jsonl, report.md, run.log.
#
# --quick     smaller loads, 3-4 minutes, for development
# --only      comma-separated subset of: mixed,imap-shared,login,lmtp,pop3,
#             pop3-python,idle,idle-tls,idle-compress,hibernate
# --worktree  build from the working tree instead of the last commit (HEAD)
# --profile   after the imap-shared cases, run each once more against postfach
#             alone with [debug] pprof on, and keep a CPU profile of it
#             (DIR/pprof-CASE.prof, and go tool pprof -top -cum in .txt)
# --baseline  also build postfach at REV (a commit) and serve a copy of the
#             same data with it: the POP3 cases measure it as "baseline" too
#             (pop3-python alternating it with the others), and
#             report-baseline.md compares postfach with it
#
# pop3-python times the same retrieval with outside clients in Python
# (bench/pop3-python.py: poplib, a raw socket one command at a time, and
# pipelined; plain and implicit TLS), alternating between the servers.
#
# It needs root (a system user for Dovecot's mail, Dovecot's privilege
# separation, the inotify limit), uses only 127.0.0.1, removes everything it
# created on exit (also on failure or Ctrl-C) and restores the sysctl it raised.
# It is not part of CI: run it on demand.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
OUT=""
ONLY="mixed,imap-shared,login,lmtp,pop3,pop3-python,idle,idle-tls,idle-compress,hibernate"
WORKTREE=0
PROFILE=0
BASELINE=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--out) OUT=$2; shift ;;
	--only) ONLY=$2; shift ;;
	--worktree) WORKTREE=1 ;;
	--profile) PROFILE=1 ;;
	--baseline) BASELINE=$2; shift ;;
	-h|--help) sed -n '2,33p' "$0"; exit 0 ;;
	*) echo "compare-dovecot.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }

[ "$(id -u)" = 0 ] || { echo "compare-dovecot.sh: run as root" >&2; exit 2; }

# Sizes. The full run takes about 20 minutes, --quick 3-4.
if [ $QUICK = 1 ]; then
	IMAP_USERS=10 PER_USER=40 POP_MSGS=200 IDLE_USERS=20 IDLE_CONNS=400 IDLE_TLS_CONNS=100 IDLE_HIB_CONNS=400
	MIXED_CLIENTS=10 MIXED_SECS=6s LOGOUT_SECS=6s LOGIN_SECS=4s LMTP_SECS=4s POP_REPEATS=3 PUSHES=20 CORPUS=200
	PY_REPEATS=3
	WARMUP=1s BUDGET=480 GC_WAIT=0s
	# imap-shared: sessions on accounts drawn at random, and K per account.
	SHARED_SESSIONS=10 SHARED_RANDOM_USERS=20 SHARED_PER_ACCOUNT=3 SHARED_SPREAD_USERS=4
	SHARED_PER_USER=40 SHARED_SECS=6s PROFILE_SECS=4
else
	# Dovecot logs in about 35 sessions a second here (one argon2id check
	# each, in its single auth process): the 10,000 IDLE sessions take five
	# minutes, so the hibernate run uses fewer.
	IMAP_USERS=50 PER_USER=100 POP_MSGS=1000 IDLE_USERS=100 IDLE_CONNS=10000 IDLE_TLS_CONNS=1000 IDLE_HIB_CONNS=3000
	MIXED_CLIENTS=50 MIXED_SECS=30s LOGOUT_SECS=20s LOGIN_SECS=15s LMTP_SECS=12s POP_REPEATS=5 PUSHES=100 CORPUS=500
	PY_REPEATS=7
	WARMUP=3s BUDGET=2400 GC_WAIT=150s
	# imap-shared (issue 13): 50 sessions on 100 accounts drawn at random,
	# and 3 sessions on each of 15 accounts.
	SHARED_SESSIONS=50 SHARED_RANDOM_USERS=100 SHARED_PER_ACCOUNT=3 SHARED_SPREAD_USERS=15
	SHARED_PER_USER=200 SHARED_SECS=30s PROFILE_SECS=20
fi
SHARED_RANDOM_CASE="imap-shared-s$SHARED_SESSIONS-a$SHARED_RANDOM_USERS"
SHARED_SPREAD_CASE="imap-shared-a${SHARED_SPREAD_USERS}x$SHARED_PER_ACCOUNT"
LMTP_USERS=16
PASSWORD=benchpass
DOMAIN=bench.test

# Loopback ports: Dovecot 21xxx, postfach 23xxx; below the ephemeral range
# (32768-60999), so the load's own client sockets cannot take them.
DC_IMAP=21143 DC_IMAPS=21993 DC_POP3=21110 DC_POP3S=21995 DC_LMTP=21424
PF_IMAP=23143 PF_IMAPS=23993 PF_POP3=23110 PF_POP3S=23995 PF_LMTP=23424 PF_HTTP=23080
BL_POP3=22110 BL_POP3S=22995

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

RUN=$(mktemp -d /tmp/postfach-bench.XXXXXX)
chmod 755 "$RUN"
PF_PID=""
BL_PID=""
DC_MASTER=""
WATCHDOG=""
OLD_INOTIFY_INSTANCES=""
OLD_INOTIFY_WATCHES=""
if [ -z "$OUT" ]; then
	OUT="$ROOT/bench/results/$(date +%Y%m%d-%H%M%S)"
	[ $QUICK = 1 ] && OUT="$OUT-quick"
fi
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
exec > >(tee "$OUT/run.log") 2>&1

stop_baseline() {
	if [ -n "$BL_PID" ] && kill -0 "$BL_PID" 2>/dev/null; then
		kill -TERM "$BL_PID" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$BL_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$BL_PID" 2>/dev/null || true
		wait "$BL_PID" 2>/dev/null || true
	fi
	BL_PID=""
}

stop_postfach() {
	if [ -n "$PF_PID" ] && kill -0 "$PF_PID" 2>/dev/null; then
		kill -TERM "$PF_PID" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$PF_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$PF_PID" 2>/dev/null || true
		wait "$PF_PID" 2>/dev/null || true
	fi
	PF_PID=""
}

# descendants PID: every process below PID.
descendants() {
	local all
	all=$(ps -eo pid=,ppid=)
	local queue=("$1") out=()
	while [ ${#queue[@]} -gt 0 ]; do
		local p=${queue[0]}
		queue=("${queue[@]:1}")
		for c in $(awk -v p="$p" '$2 == p { print $1 }' <<<"$all"); do
			out+=("$c")
			queue+=("$c")
		done
	done
	echo "${out[@]}"
}

stop_dovecot() {
	if [ -n "$DC_MASTER" ] && kill -0 "$DC_MASTER" 2>/dev/null; then
		local kids
		kids=$(descendants "$DC_MASTER")
		kill -TERM "$DC_MASTER" 2>/dev/null || true
		for _ in $(seq 150); do kill -0 "$DC_MASTER" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$DC_MASTER" 2>/dev/null || true
		# The master ends its children; any left over are ended by PID.
		for _ in $(seq 50); do
			local alive=0
			for k in $kids; do kill -0 "$k" 2>/dev/null && alive=1; done
			[ $alive = 0 ] && break
			sleep 0.2
		done
		for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
	fi
	DC_MASTER=""
}

# The goals of issue 6, shown next to the figures.
TARGETS=(
	--target "imap-mixed-c$MIXED_CLIENTS:commands_per_s:ratio>=2"
	--target "imap-login:logins_per_s:ratio>=2"
	--target "lmtp-c4:msgs_per_s:ratio>=5"
	--target "lmtp-c32:msgs_per_s:ratio>=10"
	--target "lmtp-small-c4:msgs_per_s:ratio>=5"
	--target "lmtp-small-c32:msgs_per_s:ratio>=10"
	--target "pop3-$POP_MSGS:retrieve_median_s:ratio>=2"
	--target "pop3-$POP_MSGS-tls:retrieve_median_s:ratio>=2"
	--target "pop3-python-poplib:retrieve_median_s:ratio>=2"
	--target "pop3-python-raw:retrieve_median_s:ratio>=2"
	--target "pop3-python-pipelined:retrieve_median_s:ratio>=2"
	--target "pop3-python-poplib-tls:retrieve_median_s:ratio>=2"
	--target "pop3-python-raw-tls:retrieve_median_s:ratio>=2"
	--target "pop3-python-pipelined-tls:retrieve_median_s:ratio>=2"
	--target "idle-$IDLE_CONNS:mem_per_conn_kib:value<=8"
	--target "idle-$IDLE_CONNS:push_p99:value<=50"
	--target "$SHARED_RANDOM_CASE:commands_per_s:ratio>=2"
	--target "$SHARED_RANDOM_CASE:violations:value<=0"
	--target "$SHARED_SPREAD_CASE:commands_per_s:ratio>=2"
	--target "$SHARED_SPREAD_CASE:violations:value<=0"
)
REPORTED=0
report() {
	[ -x "$RUN/bin/postfach-bench" ] && [ -s "$RESULTS" ] || return 0
	"$RUN/bin/postfach-bench" report --json "$RESULTS" "${TARGETS[@]}" | tee "$OUT/report.md"
	if [ -n "$BASELINE" ]; then
		echo "postfach ($VERSION) against the baseline ($BASELINE):"
		"$RUN/bin/postfach-bench" report --json "$RESULTS" --a postfach --b baseline | tee "$OUT/report-baseline.md"
	fi
	REPORTED=1
}

cleanup() {
	local rc=$?
	set +e
	# Stopped early (watchdog, Ctrl-C, a failure): still print what was
	# measured.
	[ $REPORTED = 0 ] && report
	if [ -n "$WATCHDOG" ]; then
		pkill -P "$WATCHDOG" 2>/dev/null # its sleep
		kill "$WATCHDOG" 2>/dev/null
	fi
	[ -s "$RUN/watchdog" ] && log "stopped: $(cat "$RUN/watchdog")"
	stop_postfach
	stop_baseline
	stop_dovecot
	[ -n "$OLD_INOTIFY_INSTANCES" ] && echo "$OLD_INOTIFY_INSTANCES" >/proc/sys/fs/inotify/max_user_instances
	[ -n "$OLD_INOTIFY_WATCHES" ] && echo "$OLD_INOTIFY_WATCHES" >/proc/sys/fs/inotify/max_user_watches
	cp -f "$RUN/dovecot.log" "$OUT/dovecot.log" 2>/dev/null
	cp -f "$RUN/postfach.log" "$OUT/postfach.log" 2>/dev/null
	rm -rf "$RUN"
	log "cleaned up (exit $rc); results in $OUT"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The whole run is bounded: a watchdog ends it (through the trap) if a
# step hangs.
# (bash runs the trap only after the foreground command, so the watchdog
# also stops the running measurement, a child "timeout" of this shell.)
( sleep "$BUDGET"; echo "time budget of ${BUDGET}s used up" >"$RUN/watchdog"
  kill -TERM $$; pkill -TERM -P $$ -x timeout ) </dev/null >/dev/null 2>&1 &
WATCHDOG=$!

# --- prerequisites ----------------------------------------------------------
need_pkgs=()
for p in imap pop3 lmtp; do
	[ -x /usr/lib/dovecot/$p ] || need_pkgs+=("dovecot-${p}d")
done
command -v openssl >/dev/null || need_pkgs+=(openssl)
if [ ${#need_pkgs[@]} -gt 0 ]; then
	log "installing ${need_pkgs[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
command -v go >/dev/null || die "Go is needed to build postfach"
if want pop3-python; then command -v python3 >/dev/null || die "pop3-python needs python3"; fi
doveadm pw -l | grep -qw ARGON2ID || die "this Dovecot build lacks ARGON2ID (doveadm pw -l)"

for p in $DC_IMAP $DC_IMAPS $DC_POP3 $DC_POP3S $DC_LMTP $PF_IMAP $PF_IMAPS $PF_POP3 $PF_POP3S $PF_LMTP $PF_HTTP $BL_POP3 $BL_POP3S; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is in use"; fi
done

# Build from a snapshot of HEAD: the figures belong to a commit, and
# half-finished edits in a shared working tree cannot break the build.
mkdir -p "$RUN/bin" "$RUN/src"
if [ $WORKTREE = 1 ]; then
	SRC=$ROOT
	VERSION="$(git -C "$ROOT" rev-parse --short HEAD)+worktree"
else
	git -C "$ROOT" archive HEAD | tar -x -C "$RUN/src"
	SRC=$RUN/src
	VERSION=$(git -C "$ROOT" rev-parse --short HEAD)
fi
log "building postfach and postfach-bench ($VERSION)"
(cd "$SRC" && go build -o "$RUN/bin/postfach" ./cmd/postfach && go build -o "$RUN/bin/postfach-bench" ./cmd/postfach-bench)
BENCH="$RUN/bin/postfach-bench"
PF="$RUN/bin/postfach"
if [ -n "$BASELINE" ]; then
	BLREV=$(git -C "$ROOT" rev-parse --short "$BASELINE") || die "--baseline $BASELINE is not a commit"
	log "building the baseline postfach ($BLREV)"
	mkdir -p "$RUN/blsrc"
	git -C "$ROOT" archive "$BLREV" | tar -x -C "$RUN/blsrc"
	(cd "$RUN/blsrc" && go build -o "$RUN/bin/postfach-baseline" ./cmd/postfach)
fi

# Limits for 10,000 connections: open files (this shell, hence both servers
# and the tool), and one inotify instance per idling Dovecot imap process.
ulimit -n "$(ulimit -Hn)"
OLD_INOTIFY_INSTANCES=$(cat /proc/sys/fs/inotify/max_user_instances)
OLD_INOTIFY_WATCHES=$(cat /proc/sys/fs/inotify/max_user_watches)
echo 40000 >/proc/sys/fs/inotify/max_user_instances
[ "$OLD_INOTIFY_WATCHES" -lt 400000 ] && echo 400000 >/proc/sys/fs/inotify/max_user_watches
[ "$(ulimit -n)" -ge $((IDLE_CONNS + 500)) ] || log "warning: open file limit $(ulimit -n) is low for $IDLE_CONNS connections"

# --- the machine --------------------------------------------------------------
{
	echo "## machine"
	lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|CPU max MHz|L2|L3)' || true
	free -m | head -2
	df -h "$RUN" | tail -1
	uname -r
	echo "dovecot $(dovecot --version)"
	go version
	echo "postfach $VERSION"
	[ -n "$BASELINE" ] && echo "baseline postfach $BLREV"
	uptime
} | tee "$OUT/machine.txt"

# --- users and corpus -----------------------------------------------------------
# Groups of accounts, the same on both servers:
#   bench1..N  IMAP mixed and login (PER_USER messages each)
#   pop1       the POP3 maildrop (POP_MSGS messages)
#   sink1..16  LMTP delivery targets
#   idle1..N   IDLE sessions (5 messages each)
#   shr1..N    imap-shared, sessions on accounts drawn at random (SHARED_PER_USER each)
#   shp1..N    imap-shared, SHARED_PER_ACCOUNT sessions on each (SHARED_PER_USER each)
# Only the groups the chosen cases use are created.
ACCOUNT_GROUPS=()
if want mixed || want login; then ACCOUNT_GROUPS+=("bench $IMAP_USERS"); fi
if want pop3 || want pop3-python; then ACCOUNT_GROUPS+=("pop 1"); fi
if want lmtp; then ACCOUNT_GROUPS+=("sink $LMTP_USERS"); fi
if want idle || want idle-tls || want idle-compress || want hibernate; then ACCOUNT_GROUPS+=("idle $IDLE_USERS"); fi
if want imap-shared; then ACCOUNT_GROUPS+=("shr $SHARED_RANDOM_USERS" "shp $SHARED_SPREAD_USERS"); fi
[ ${#ACCOUNT_GROUPS[@]} -gt 0 ] || die "--only $ONLY names no known case"

MAIL_USER=pfbench
if ! id "$MAIL_USER" >/dev/null 2>&1; then
	log "creating system user $MAIL_USER for Dovecot's mail"
	useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$MAIL_USER"
fi
MAIL_UID=$(id -u "$MAIL_USER")
MAIL_GID=$(id -g "$MAIL_USER")

log "writing Dovecot's passwd-file (argon2id, postfach's parameters)"
: >"$RUN/users"
for g in "${ACCOUNT_GROUPS[@]}"; do
	set -- $g
	"$BENCH" passwd-file --users "$1%d@$DOMAIN" --count "$2" --password "$PASSWORD" >>"$RUN/users"
done
chmod 644 "$RUN/users"

mkdir -p "$RUN/mail" "$RUN/tls" "$RUN/state"
chown "$MAIL_USER:$MAIL_USER" "$RUN/mail"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
	-subj "/CN=bench.localhost" -keyout "$RUN/tls/key.pem" -out "$RUN/tls/cert.pem" 2>/dev/null
chmod 600 "$RUN/tls/key.pem"

# --- servers ----------------------------------------------------------------------
wait_port() { # port seconds
	for _ in $(seq $(($2 * 10))); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	return 1
}

start_dovecot() { # hibernate-timeout
	sed -e "s|@RUN@|$RUN|g" -e "s|@MAIL_USER@|$MAIL_USER|g" -e "s|@MAIL_GROUP@|$MAIL_USER|g" \
		-e "s|@MAIL_UID@|$MAIL_UID|g" -e "s|@MAIL_GID@|$MAIL_GID|g" \
		-e "s|@IMAP_PORT@|$DC_IMAP|g" -e "s|@IMAPS_PORT@|$DC_IMAPS|g" -e "s|@POP3_PORT@|$DC_POP3|g" \
		-e "s|@POP3S_PORT@|$DC_POP3S|g" \
		-e "s|@LMTP_PORT@|$DC_LMTP|g" -e "s|@HIBERNATE_TIMEOUT@|$1|g" \
		"$SRC/bench/dovecot/dovecot.conf.in" >"$RUN/dovecot.conf"
	dovecot -c "$RUN/dovecot.conf" || die "dovecot did not start (see $RUN/dovecot.log)"
	for _ in $(seq 50); do [ -s "$RUN/run/master.pid" ] && break; sleep 0.1; done
	DC_MASTER=$(cat "$RUN/run/master.pid")
	wait_port $DC_IMAP 10 && wait_port $DC_LMTP 10 || die "dovecot is not listening"
	log "dovecot started (master $DC_MASTER, imap_hibernate_timeout=$1)"
}

cat >"$RUN/postfach.toml" <<EOF
data_dir = "$RUN/postfach-data"
hostname = "bench.localhost"
domains = ["$DOMAIN"]
max_message_size = "50MiB"
[listen]
imap = "127.0.0.1:$PF_IMAP"
imaps = "127.0.0.1:$PF_IMAPS"
pop3 = "127.0.0.1:$PF_POP3"
pop3s = "127.0.0.1:$PF_POP3S"
lmtp = "127.0.0.1:$PF_LMTP"
smtp = ""
submission = ""
submissions = ""
http = "127.0.0.1:$PF_HTTP"
web = ""
[limits]
connections = 15000
connections_per_ip = 15000
[log]
level = "warn"
EOF
if [ $PROFILE = 1 ]; then
	printf '[debug]\npprof = true\n' >>"$RUN/postfach.toml"
fi

start_postfach() {
	"$PF" serve --config "$RUN/postfach.toml" >>"$RUN/postfach.log" 2>&1 &
	PF_PID=$!
	wait_port $PF_LMTP 30 || die "postfach is not listening (see $RUN/postfach.log)"
	log "postfach started (pid $PF_PID)"
}

# Is there an IMAP (POP3) server on the port? postfach's may not exist yet.
speaks() { # port greeting-prefix
	local line
	line=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" && timeout 5 head -n1 <&3) 2>/dev/null || true)
	[[ "$line" == "$2"* ]]
}

start_dovecot 0
start_postfach

log "creating the accounts on postfach"
for g in "${ACCOUNT_GROUPS[@]}"; do
	set -- $g
	for i in $(seq "$2"); do echo "$1$i@$DOMAIN"; done
done | xargs -P 2 -I{} sh -c "printf '%s\n' '$PASSWORD' | '$PF' user add --config '$RUN/postfach.toml' --password-stdin {} >/dev/null" \
	|| die "postfach user add failed"

PF_HAS_IMAP=0 PF_HAS_POP3=0
speaks $PF_IMAP "* OK" && PF_HAS_IMAP=1
speaks $PF_POP3 "+OK" && PF_HAS_POP3=1
log "postfach IMAP: $([ $PF_HAS_IMAP = 1 ] && echo yes || echo 'not available yet'), POP3: $([ $PF_HAS_POP3 = 1 ] && echo yes || echo 'not available yet')"

CORPUS_DIR="$RUN/corpus"
"$BENCH" corpus --count $CORPUS --out "$CORPUS_DIR" | tee "$OUT/corpus.txt"
C=(--corpus "$CORPUS_DIR")

# Each group is loaded only when a chosen case uses it.
load_all() { # label lmtp-port
	local args=(--addr "127.0.0.1:$2" --label "$1" --quiet --json "$RESULTS" "${C[@]}" --password $PASSWORD)
	if want mixed || want login; then
		"$BENCH" load "${args[@]}" --users "bench%d@$DOMAIN" --count $IMAP_USERS --per-user $PER_USER --conns 4 | grep -v '^{'
	fi
	if want pop3 || want pop3-python; then
		"$BENCH" load "${args[@]}" --users "pop%d@$DOMAIN" --count 1 --per-user $POP_MSGS --conns 1 | grep -v '^{'
	fi
	if want idle || want idle-tls || want idle-compress || want hibernate; then
		"$BENCH" load "${args[@]}" --users "idle%d@$DOMAIN" --count $IDLE_USERS --per-user 5 --conns 4 | grep -v '^{'
	fi
	if want imap-shared; then
		"$BENCH" load "${args[@]}" --users "shr%d@$DOMAIN" --count $SHARED_RANDOM_USERS --per-user $SHARED_PER_USER --conns 4 | grep -v '^{'
		"$BENCH" load "${args[@]}" --users "shp%d@$DOMAIN" --count $SHARED_SPREAD_USERS --per-user $SHARED_PER_USER --conns 4 | grep -v '^{'
	fi
}
log "loading the same corpus into both servers"
load_all postfach $PF_LMTP
load_all dovecot $DC_LMTP

# The baseline serves a copy of postfach's data, taken while postfach is
# stopped; only its POP3 listeners are open.
if [ -n "$BASELINE" ]; then
	stop_postfach
	cp -a "$RUN/postfach-data" "$RUN/baseline-data"
	start_postfach
	sed -e "s|^data_dir = .*|data_dir = \"$RUN/baseline-data\"|" -e "s|^imap = .*|imap = \"\"|" -e "s|^imaps = .*|imaps = \"\"|" \
		-e "s|^lmtp = .*|lmtp = \"\"|" -e "s|^http = .*|http = \"\"|" \
		-e "s|^pop3 = .*|pop3 = \"127.0.0.1:$BL_POP3\"|" -e "s|^pop3s = .*|pop3s = \"127.0.0.1:$BL_POP3S\"|" \
		-e "/^\[debug\]/,\$d" "$RUN/postfach.toml" >"$RUN/baseline.toml"
	"$RUN/bin/postfach-baseline" serve --config "$RUN/baseline.toml" >>"$RUN/baseline.log" 2>&1 &
	BL_PID=$!
	wait_port $BL_POP3 30 || die "the baseline postfach is not listening (see $RUN/baseline.log)"
	log "baseline postfach $BLREV started (pid $BL_PID)"
fi

# run LABEL WORKLOAD ARGS...: one measurement, its table to the log, its
# JSON line to results.jsonl. A failed run is logged and the script goes on.
run() {
	local label=$1 workload=$2
	shift 2
	local pids=(--pid "$PF_PID")
	[ "$label" = dovecot ] && pids=(--pid "$DC_MASTER" --pid-tree)
	timeout 900 "$BENCH" "$workload" --label "$label" --json "$RESULTS" "${pids[@]}" "$@" | grep -v '^{' \
		|| log "warning: $workload against $label failed"
}

# both CASE WORKLOAD ARGS...: the same load against postfach, then Dovecot.
# IMAP and POP3 loads are skipped on postfach until its server exists.
both() {
	local case=$1 workload=$2
	shift 2
	local proto=imap
	case "$workload" in pop3) proto=pop3 ;; lmtp) proto=lmtp ;; esac
	local pfaddr dcaddr
	case "$proto" in
	imap) pfaddr=$PF_IMAP dcaddr=$DC_IMAP ;;
	pop3) pfaddr=$PF_POP3 dcaddr=$DC_POP3 ;;
	lmtp) pfaddr=$PF_LMTP dcaddr=$DC_LMTP ;;
	esac
	for a in "$@"; do
		if [ "$a" = --tls ]; then
			case "$proto" in
			pop3) pfaddr=$PF_POP3S dcaddr=$DC_POP3S ;;
			*) pfaddr=$PF_IMAPS dcaddr=$DC_IMAPS ;;
			esac
		fi
	done
	local skip=0
	[ $proto = imap ] && [ $PF_HAS_IMAP = 0 ] && skip=1
	[ $proto = pop3 ] && [ $PF_HAS_POP3 = 0 ] && skip=1
	if [ $skip = 1 ]; then
		log "skipping $case on postfach: no $proto server yet"
	else
		run postfach "$workload" --case "$case" --addr "127.0.0.1:$pfaddr" "$@"
	fi
	run dovecot "$workload" --case "$case" --addr "127.0.0.1:$dcaddr" "$@"
}

BU=(--users "bench%d@$DOMAIN" --count $IMAP_USERS --password $PASSWORD)
if want mixed; then
	both "imap-mixed-c$MIXED_CLIENTS" imap-mixed "${BU[@]}" "${C[@]}" --clients $MIXED_CLIENTS --duration $MIXED_SECS --warmup $WARMUP
	both "imap-mixed-c$MIXED_CLIENTS-logout" imap-mixed "${BU[@]}" "${C[@]}" --clients $MIXED_CLIENTS --duration $LOGOUT_SECS --warmup $WARMUP --logout-each-cycle
fi
if want imap-shared; then
	# Several sessions per INBOX (issue 13), every response checked for
	# consistency: sessions on accounts drawn at random (50 on 100: about
	# 40 accounts used, a dozen of them by two or more sessions), and 3
	# sessions on each of 15 accounts.
	SR=(--users "shr%d@$DOMAIN" --count $SHARED_RANDOM_USERS --password $PASSWORD "${C[@]}" --sessions $SHARED_SESSIONS --duration $SHARED_SECS --warmup $WARMUP)
	SP=(--users "shp%d@$DOMAIN" --count $SHARED_SPREAD_USERS --password $PASSWORD "${C[@]}" --per-account $SHARED_PER_ACCOUNT --duration $SHARED_SECS --warmup $WARMUP)
	both "$SHARED_RANDOM_CASE" imap-shared "${SR[@]}"
	both "$SHARED_SPREAD_CASE" imap-shared "${SP[@]}"
	if [ $PROFILE = 1 ] && [ $PF_HAS_IMAP = 1 ]; then
		# The same loads once more against postfach alone, with a CPU
		# profile of the middle of the run; not in results.jsonl.
		for c in random spread; do
			if [ $c = random ]; then pcase=$SHARED_RANDOM_CASE; pargs=("${SR[@]}"); else pcase=$SHARED_SPREAD_CASE; pargs=("${SP[@]}"); fi
			log "profiling postfach under $pcase (${PROFILE_SECS}s)"
			timeout 900 "$BENCH" imap-shared --label postfach-profiled --case "$pcase" --addr "127.0.0.1:$PF_IMAP" --quiet \
				--json "$OUT/profiled.jsonl" "${pargs[@]}" >"$OUT/profiled-$pcase.log" 2>&1 &
			bp=$!
			sleep "${WARMUP%s}"; sleep 2
			curl -sf -o "$OUT/pprof-$pcase.prof" "http://127.0.0.1:$PF_HTTP/debug/pprof/profile?seconds=$PROFILE_SECS" \
				|| log "warning: no profile from postfach"
			wait $bp || log "warning: the profiled run failed"
			if [ -s "$OUT/pprof-$pcase.prof" ]; then
				go tool pprof -top -cum "$OUT/pprof-$pcase.prof" 2>/dev/null | head -70 >"$OUT/pprof-$pcase.txt"
			fi
		done
	fi
fi
if want login; then
	both imap-login imap-login "${BU[@]}" --clients 16 --duration $LOGIN_SECS --warmup $WARMUP
fi
if want lmtp; then
	# The corpus as it is (mean ~65 KB, up to 4 MB: bytes count), then only
	# its small messages (<= 10 KB, three quarters of mail: fsyncs count).
	for c in 4 32; do
		both "lmtp-c$c" lmtp --users "sink%d@$DOMAIN" --count $LMTP_USERS "${C[@]}" --conns $c --duration $LMTP_SECS --warmup $WARMUP
	done
	for c in 4 32; do
		both "lmtp-small-c$c" lmtp --users "sink%d@$DOMAIN" --count $LMTP_USERS "${C[@]}" --max-size 10000 --conns $c --duration $LMTP_SECS --warmup $WARMUP
	done
fi
if want pop3; then
	for tls in "" --tls; do
		c="pop3-$POP_MSGS${tls:+-tls}"
		if [ -n "$BL_PID" ]; then
			bl=$BL_POP3
			[ -n "$tls" ] && bl=$BL_POP3S
			timeout 900 "$BENCH" pop3 --label baseline --json "$RESULTS" --pid "$BL_PID" --case "$c" --addr "127.0.0.1:$bl" \
				--user "pop1@$DOMAIN" --password $PASSWORD --repeats $POP_REPEATS $tls | grep -v '^{' \
				|| log "warning: pop3 against the baseline failed"
		fi
		both "$c" pop3 --user "pop1@$DOMAIN" --password $PASSWORD --repeats $POP_REPEATS $tls
	done
fi
if want pop3-python; then
	# Outside clients (issue 13): the same retrieval with Python's poplib
	# and with a lean raw-socket client, one command at a time and
	# pipelined, plain and over implicit TLS. Each case alternates between
	# the servers (A B B A ...) after one untimed retrieval on each.
	if [ $PF_HAS_POP3 = 0 ]; then
		log "skipping pop3-python: postfach has no pop3 server yet"
	else
		for tls in "" --tls; do
			for mode in poplib raw pipelined; do
				pf=$PF_POP3 dc=$DC_POP3 bl=$BL_POP3
				[ -n "$tls" ] && { pf=$PF_POP3S; dc=$DC_POP3S; bl=$BL_POP3S; }
				blargs=()
				[ -n "$BL_PID" ] && blargs=(--server "baseline=127.0.0.1:$bl" --pid "baseline=$BL_PID")
				timeout 900 python3 "$SRC/bench/pop3-python.py" --mode $mode $tls --repeats $PY_REPEATS --warmup 1 \
					--server "postfach=127.0.0.1:$pf" --server "dovecot=127.0.0.1:$dc" "${blargs[@]}" \
					--pid "postfach=$PF_PID" --pid "dovecot=$DC_MASTER" --pid-tree dovecot \
					--user "pop1@$DOMAIN" --password $PASSWORD --quiet --json "$RESULTS" | grep -v '^{' \
					|| log "warning: pop3-python $mode $tls failed"
			done
		done
	fi
fi

# IDLE: each case starts on freshly restarted servers, so sessions left
# from the previous case (Dovecot keeps reusable imap processes) do not
# count, and postfach's RSS baseline is its own.
IU=(--users "idle%d@$DOMAIN" --count $IDLE_USERS --password $PASSWORD --dial-concurrency 32 --settle 5s --push-budget 45s)
idle_case() { # case conns postfach-only-args extra-args...
	local case=$1 n=$2 pfonly=$3
	shift 3
	stop_postfach; start_postfach
	stop_dovecot; start_dovecot 0
	if [ $PF_HAS_IMAP = 1 ]; then
		# shellcheck disable=SC2086 # pfonly is a list of flags
		run postfach idle --case "$case" --addr "127.0.0.1:$([[ " $* " == *" --tls "* ]] && echo $PF_IMAPS || echo $PF_IMAP)" \
			"${IU[@]}" --conns "$n" --mem-metric rss-growth --lmtp "127.0.0.1:$PF_LMTP" $pfonly "$@"
	else
		log "skipping $case on postfach: no imap server yet"
	fi
	run dovecot idle --case "$case" --addr "127.0.0.1:$([[ " $* " == *" --tls "* ]] && echo $DC_IMAPS || echo $DC_IMAP)" \
		"${IU[@]}" --conns "$n" --mem-metric pss-total --lmtp "127.0.0.1:$DC_LMTP" "$@"
}
# The small cases first: stopping a Dovecot with 10,000 processes takes a
# minute.
want idle-tls && idle_case "idle-$IDLE_TLS_CONNS-tls" $IDLE_TLS_CONNS "" --tls --pushes 0
want idle-compress && idle_case "idle-$IDLE_TLS_CONNS-compress" $IDLE_TLS_CONNS "" --compress --pushes 0
# postfach's RSS right after the logins still holds their garbage (each
# first login of an account runs argon2id over 19 MiB): read the Go
# runtime's figures after its next collection as well.
want idle && idle_case "idle-$IDLE_CONNS" $IDLE_CONNS \
	"--metrics-url http://127.0.0.1:$PF_HTTP/metrics --gc-wait $GC_WAIT" --pushes $PUSHES
if want hibernate; then
	stop_dovecot
	start_dovecot 5s
	run dovecot idle --case "idle-$IDLE_HIB_CONNS-hibernate" --addr "127.0.0.1:$DC_IMAP" "${IU[@]}" \
		--conns $IDLE_HIB_CONNS --mem-metric pss-total --lmtp "127.0.0.1:$DC_LMTP" --pushes $PUSHES
fi

# --- the table -------------------------------------------------------------------
report
