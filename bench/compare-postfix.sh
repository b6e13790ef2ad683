#!/usr/bin/env bash
# Submission through the outbound queue, postfach against Postfix (issue 15).
#
#   sudo bench/compare-postfix.sh [--rounds N] [--secs S] [--clients N] [--max-size B]
#                                 [--out DIR] [--worktree] [--baseline REV] [--profile]
#
# Installs Debian's postfix, sasl2-bin and opendkim if missing (without
# starting the system's Postfix or OpenDKIM), builds postfach and postfach-bench, and starts on
# 127.0.0.1 only:
#
#   postfach        submission with AUTH, DKIM keys for the senders' domain
#                   (every message signed with RSA 2048 and ed25519), a Sent
#                   copy of every message: what a user gets by default
#   postfach-dkim   DKIM keys, no Sent copy: the work of postfix-dkim
#   postfach-bare   neither DKIM keys nor the Sent copy: the work Postfix does
#   baseline        with --baseline REV: postfach built at REV, as postfach
#   postfix         a private Postfix instance (own config and queue
#                   directory) as a submission server: SASL PLAIN through
#                   Cyrus sasldb, relayhost=[127.0.0.1]:PORT
#   postfix-dkim    the same Postfix on a second port whose smtpd passes
#                   the mail through Debian's OpenDKIM (a milter, signing
#                   with one RSA 2048 key, relaxed/relaxed): Postfix's way
#                   of signing
#
# Each postfach and Postfix deliver to their own sink (an SMTP server in
# postfach-bench that answers 250 and counts): postfach through [relay] host
# (tls "none" on loopback), Postfix through relayhost, so both take the same
# path (no DNS; a [queue] port with MX records from a DNS server would add
# lookups that relayhost does not make). Both answer the submission's 250
# only with the message fsync'd in their queue (Postfix by default,
# postfach always).
#
# The loads alternate: round 1 runs every server once, then round 2, so a
# change in the machine's load hits all alike. Every run: N clients (one
# account each) submit corpus messages (generated, 500, mean about 65 kB;
# --max-size keeps the smaller ones) to one remote recipient each, for
# S seconds after a 2 s warmup; the rate counts the sink's 250s. The
# server's CPU time over the measurement comes from /proc (Postfix: the
# master and all its children, and OpenDKIM for postfix-dkim). Results go to DIR (default
# bench/results/DATE-postfix): results.jsonl, report.md (medians), run.log.
#
# --worktree  build from the working tree instead of HEAD
# --profile   take a 10 s CPU profile of postfach in the last round
#             (DIR/pprof-postfach.prof and its top -cum in .txt)
#
# Needs root (Postfix's master runs as root, its queue belongs to the
# postfix user). Removes everything it made on exit; the installed packages
# stay. Not part of CI: run it on demand.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=5 SECS=15 CLIENTS=8 MAXSIZE=0 OUT="" WORKTREE=0 BASELINE="" PROFILE=0
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift ;;
	--secs) SECS=$2; shift ;;
	--clients) CLIENTS=$2; shift ;;
	--max-size) MAXSIZE=$2; shift ;;
	--out) OUT=$2; shift ;;
	--worktree) WORKTREE=1 ;;
	--baseline) BASELINE=$2; shift ;;
	--profile) PROFILE=1 ;;
	-h|--help) sed -n '2,44p' "$0"; exit 0 ;;
	*) echo "compare-postfix.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || { echo "compare-postfix.sh: run as root" >&2; exit 2; }

USERS=$CLIENTS PASSWORD=benchpass DOMAIN=bench.test
# Loopback ports below the ephemeral range.
PF_SUB=25587 PF_HTTP=25080 PF_SINK=25525
DK_SUB=25586 DK_SINK=25524
BARE_SUB=25588 BARE_SINK=25526
BL_SUB=25589 BL_SINK=25527
PX_SUB=25590 PX_SINK=25528 PXD_SUB=25591 OD_PORT=25592

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

RUN=$(mktemp -d /tmp/postfach-postfix.XXXXXX)
chmod 755 "$RUN"
PIDS=()
PX_STARTED=0
if [ -z "$OUT" ]; then
	OUT="$ROOT/bench/results/$(date +%Y%m%d-%H%M%S)-postfix"
fi
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
exec > >(tee "$OUT/run.log") 2>&1

cleanup() {
	set +e
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ $PX_STARTED = 1 ]; then
		postfix -c "$RUN/postfix/etc" stop >/dev/null 2>&1
		for _ in $(seq 100); do [ -e "$RUN/postfix/spool/pid/master.pid" ] || break; sleep 0.1; done
		local mp
		mp=$(cat "$RUN/postfix/spool/pid/master.pid" 2>/dev/null | tr -d ' ')
		[ -n "$mp" ] && kill -KILL "$mp" 2>/dev/null
	fi
	rm -rf "$RUN"
}
trap cleanup EXIT INT TERM

# --- what it needs
need=()
command -v postfix >/dev/null || need+=(postfix)
command -v saslpasswd2 >/dev/null || need+=(sasl2-bin)
dpkg -s libsasl2-modules-db >/dev/null 2>&1 || need+=(libsasl2-modules-db)
command -v python3 >/dev/null || need+=(python3)
command -v opendkim >/dev/null || need+=(opendkim)
command -v opendkim-genkey >/dev/null || need+=(opendkim-tools)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	# "No configuration": the system's Postfix is neither set up nor started.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi

# --- build
build() { # rev-or-"" dest
	local src=$1 dest=$2
	mkdir -p "$dest"
	if [ -z "$src" ]; then
		(cd "$ROOT" && go build -o "$dest/" ./cmd/postfach ./cmd/postfach-bench)
	else
		mkdir -p "$RUN/src-$(basename "$dest")"
		git -C "$ROOT" archive "$src" | tar -x -C "$RUN/src-$(basename "$dest")"
		(cd "$RUN/src-$(basename "$dest")" && go build -o "$dest/" ./cmd/postfach ./cmd/postfach-bench)
	fi
}
log "building postfach"
if [ $WORKTREE = 1 ]; then build "" "$RUN/bin"; else build HEAD "$RUN/bin"; fi
[ -n "$BASELINE" ] && { log "building baseline $BASELINE"; build "$BASELINE" "$RUN/bin-baseline"; }
BENCH="$RUN/bin/postfach-bench"
"$BENCH" corpus --count 500 --out "$RUN/corpus" >"$OUT/corpus.txt"

wait_port() { # port what
	for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
	die "$2 is not listening on $1 after 60 s"
}

# --- postfach instances
start_postfach() { # name bin sub sink dkim(0/1) sent(true/false) http
	local name=$1 bin=$2 sub=$3 sink=$4 dkim=$5 sent=$6 http=$7
	local dir="$RUN/$name"
	mkdir -p "$dir"
	cat >"$dir/postfach.toml" <<EOF
data_dir = "$dir/data"
hostname = "$name.bench.localhost"
domains = ["$DOMAIN"]
[listen]
imap = ""
imaps = ""
pop3 = ""
pop3s = ""
lmtp = ""
smtp = ""
submission = "127.0.0.1:$sub"
submissions = ""
http = "$http"
web = ""
[relay]
host = "127.0.0.1:$sink"
tls = "none"
[submission]
save_sent = $sent
max_messages_per_hour = 100000000
max_recipients_per_hour = 100000000
[log]
level = "warn"
EOF
	[ $PROFILE = 1 ] && [ "$name" = postfach ] && printf '[debug]\npprof = true\n' >>"$dir/postfach.toml"
	for i in $(seq "$USERS"); do
		echo "$PASSWORD" | "$bin/postfach" user add --config "$dir/postfach.toml" --password-stdin "bench$i@$DOMAIN" >/dev/null
	done
	if [ "$dkim" = 1 ]; then
		"$bin/postfach" dkim keygen --config "$dir/postfach.toml" "$DOMAIN" >/dev/null
	fi
	"$bin/postfach" serve --config "$dir/postfach.toml" >"$dir/serve.log" 2>&1 &
	PIDS+=($!)
	echo $! >"$dir/pid"
	wait_port "$sub" "$name"
}
log "starting postfach"
start_postfach postfach "$RUN/bin" $PF_SUB $PF_SINK 1 true "127.0.0.1:$PF_HTTP"
start_postfach postfach-dkim "$RUN/bin" $DK_SUB $DK_SINK 1 false ""
start_postfach postfach-bare "$RUN/bin" $BARE_SUB $BARE_SINK 0 false ""
[ -n "$BASELINE" ] && start_postfach baseline "$RUN/bin-baseline" $BL_SUB $BL_SINK 1 true ""

# --- OpenDKIM for postfix-dkim
log "starting opendkim"
OD="$RUN/opendkim"
mkdir -p "$OD"
opendkim-genkey -b 2048 -d "$DOMAIN" -s pfx -D "$OD"
chown -R opendkim "$OD"
cat >"$OD/opendkim.conf" <<EOF
Syslog no
Mode s
Domain $DOMAIN
Selector pfx
KeyFile $OD/pfx.private
Socket inet:$OD_PORT@127.0.0.1
Canonicalization relaxed/relaxed
InternalHosts 127.0.0.1
UserID opendkim
PidFile $OD/opendkim.pid
# The key sits under /tmp, which OpenDKIM calls unsafe.
RequireSafeKeys false
EOF
opendkim -f -x "$OD/opendkim.conf" >"$OD/opendkim.log" 2>&1 &
PIDS+=($!)
OD_PID=$!
wait_port $OD_PORT opendkim

# --- Postfix: a private instance
log "starting postfix"
PX="$RUN/postfix"
mkdir -p "$PX/etc/sasl" "$PX/spool" "$PX/data"
chown postfix "$PX/data"
cat >"$PX/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PX/spool
data_directory = $PX/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.bench.localhost
mydomain = bench.localhost
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$PX_SINK
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file_prefixes = $PX
maillog_file = $PX/maillog
biff = no
EOF
# Debian's Postfix reads the Cyrus SASL config from CONFIG_DIRECTORY/sasl.
cat >"$PX/etc/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $PX/sasldb2
mech_list: PLAIN LOGIN
EOF
for i in $(seq "$USERS"); do
	echo "$PASSWORD" | saslpasswd2 -f "$PX/sasldb2" -p -c -u "$DOMAIN" "bench$i"
done
chown postfix "$PX/sasldb2"
chmod 640 "$PX/sasldb2"
# Debian's master.cf with nothing chrooted and smtpd on our port only.
awk -v port=$PX_SUB -v dport=$PXD_SUB -v odport=$OD_PORT '/^#/ || /^[ \t]/ || NF < 8 { print; next }
	$1 == "smtp" && $2 == "inet" {
		print "127.0.0.1:" port "  inet  n  -  n  -  -  smtpd"
		print "127.0.0.1:" dport "  inet  n  -  n  -  -  smtpd"
		print "  -o smtpd_milters=inet:127.0.0.1:" odport
		print "  -o milter_default_action=tempfail"
		next
	}
	$2 == "inet" { next }
	{ $5 = "n"; print }' /etc/postfix/master.cf.proto >"$PX/etc/master.cf"
cp /etc/postfix/dynamicmaps.cf "$PX/etc/" 2>/dev/null || true
[ -d /etc/postfix/dynamicmaps.cf.d ] && cp -r /etc/postfix/dynamicmaps.cf.d "$PX/etc/"
touch "$PX/maillog"
postfix -c "$PX/etc" start >/dev/null 2>&1 || die "postfix did not start: $(tail -5 "$PX/maillog")"
PX_STARTED=1
wait_port $PX_SUB postfix
PX_PID=$(tr -d ' ' <"$PX/spool/pid/master.pid")

# --- the rounds
SERVERS="postfach postfach-dkim postfach-bare"
[ -n "$BASELINE" ] && SERVERS="$SERVERS baseline"
SERVERS="$SERVERS postfix postfix-dkim"
extra=()
[ "$MAXSIZE" != 0 ] && extra=(--max-size "$MAXSIZE")
CASE="submit-c$CLIENTS"
[ "$MAXSIZE" != 0 ] && CASE="$CASE-max$MAXSIZE"
run_one() { # server round
	local s=$1 round=$2 addr sink pidargs
	case $s in
	postfach) addr=$PF_SUB sink=$PF_SINK pidargs=(--pid "$(cat "$RUN/postfach/pid")") ;;
	postfach-bare) addr=$BARE_SUB sink=$BARE_SINK pidargs=(--pid "$(cat "$RUN/postfach-bare/pid")") ;;
	baseline) addr=$BL_SUB sink=$BL_SINK pidargs=(--pid "$(cat "$RUN/baseline/pid")") ;;
	postfach-dkim) addr=$DK_SUB sink=$DK_SINK pidargs=(--pid "$(cat "$RUN/postfach-dkim/pid")") ;;
	postfix) addr=$PX_SUB sink=$PX_SINK pidargs=(--pid "$PX_PID" --pid-tree) ;;
	postfix-dkim) addr=$PXD_SUB sink=$PX_SINK pidargs=(--pid "$PX_PID,$OD_PID" --pid-tree) ;;
	esac
	local prof=""
	if [ $PROFILE = 1 ] && [ "$s" = postfach ] && [ "$round" = "$ROUNDS" ]; then
		(sleep 4; curl -sf -o "$OUT/pprof-postfach.prof" "http://127.0.0.1:$PF_HTTP/debug/pprof/profile?seconds=10") &
		prof=$!
	fi
	log "round $round: $s"
	"$BENCH" submit --addr "127.0.0.1:$addr" --sink "127.0.0.1:$sink" --label "$s" --case "$CASE" \
		--users "bench%d@$DOMAIN" --count "$USERS" --password "$PASSWORD" --clients "$CLIENTS" \
		--corpus "$RUN/corpus" "${extra[@]}" --duration "${SECS}s" --warmup 2s --drain 120s \
		"${pidargs[@]}" --quiet --json "$RESULTS" | grep -E '^ +(msgs_per_s|server_cpu_ms_per_msg|lost|duplicates|dkim_signed_share) ' || true
	if [ -n "$prof" ]; then
		wait "$prof" || true
		go tool pprof -top -cum "$RUN/bin/postfach" "$OUT/pprof-postfach.prof" >"$OUT/pprof-postfach.txt" 2>/dev/null || true
	fi
}
for round in $(seq "$ROUNDS"); do
	for s in $SERVERS; do
		run_one "$s" "$round"
	done
done

# --- report: medians per server
python3 - "$RESULTS" "$OUT/report.md" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    m = {x["name"]: x["value"] for x in r["metrics"]}
    by.setdefault(r["label"], []).append(m)
def med(ms, n):
    vals = [m[n] for m in ms if n in m]
    return statistics.median(vals) if vals else float("nan")
ref = med(by["postfix"], "msgs_per_s") if "postfix" in by else None
out = ["| server | runs | msg/s (median) | msg/s (each run) | / postfix | server CPU ms/msg | submit p50 ms | to sink p50 ms | lost | duplicates | signed |",
       "|---|---|---|---|---|---|---|---|---|---|---|"]
for label, ms in by.items():
    rate = med(ms, "msgs_per_s")
    out.append("| %s | %d | %.0f | %s | %s | %.2f | %.1f | %.1f | %d | %d | %.2f |" % (
        label, len(ms), rate, " ".join("%.0f" % m["msgs_per_s"] for m in ms),
        "%.2f" % (rate / ref) if ref else "", med(ms, "server_cpu_ms_per_msg"), med(ms, "submit_p50"),
        med(ms, "to_sink_p50"), sum(m.get("lost", 0) for m in ms), sum(m.get("duplicates", 0) for m in ms),
        med(ms, "dkim_signed_share")))
open(sys.argv[2], "w").write("\n".join(out) + "\n")
EOF
cat "$OUT/report.md"
log "results in $OUT"
