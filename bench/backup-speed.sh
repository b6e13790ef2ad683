#!/usr/bin/env bash
# Import, backup and verify speed of postfach (issue 17), on demand:
#
#   sudo bench/backup-speed.sh [--count N] [--pairs K] [--out DIR]
#
# 1. Import: the benchmark corpus (postfach-bench corpus, N messages,
#    default 2000) as one mboxrd file, imported by `postfach import` into a
#    fresh data directory, and by Dovecot's `doveadm import` into a fresh
#    Maildir of a private Dovecot (bench/dovecot/dovecot.conf.in, as
#    bench/compare-dovecot.sh runs it: mail_fsync = optimized). The two
#    alternate, K pairs (default 5), so that the noise of a shared machine
#    falls on both. Each run reports wall time, messages/s, and CPU seconds
#    (user+system, from /proc: the cutime and cstime the measuring subshell
#    collected from the command) per 1,000 messages.
# 2. Backup and verify: `postfach backup` of the last import's store (no
#    server running: the command reads the store itself) into a fresh root,
#    K times, and `postfach backup verify` of it, in MB/s of message bodies;
#    against the disk's sequential write and read rates measured with dd
#    (1 GiB, written with fdatasync, read with O_DIRECT) in the same run.
#
# Needs root (Dovecot's privilege separation, the pfbench mail user), uses
# only 127.0.0.1 and a temporary directory, and removes what it made on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
COUNT=2000
PAIRS=5
OUT=""
while [ $# -gt 0 ]; do
	case "$1" in
	--count) COUNT=$2; shift ;;
	--pairs) PAIRS=$2; shift ;;
	--out) OUT=$2; shift ;;
	-h|--help) sed -n '2,24p' "$0"; exit 0 ;;
	*) echo "backup-speed.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || { echo "backup-speed.sh: run as root" >&2; exit 2; }

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

RUN=$(mktemp -d /tmp/postfach-backup-speed.XXXXXX)
chmod 755 "$RUN"
[ -n "$OUT" ] || OUT="$ROOT/bench/results/backup-speed-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
DC_MASTER=""
cleanup() {
	local rc=$?
	set +e
	if [ -n "$DC_MASTER" ] && kill -0 "$DC_MASTER" 2>/dev/null; then
		kill -TERM "$DC_MASTER"
		for _ in $(seq 100); do kill -0 "$DC_MASTER" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -rf "$RUN"
	log "cleaned up (exit $rc); results in $OUT"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# measure LABEL CMD...: runs CMD, and prints "LABEL wall_s cpu_s" (CPU:
# the subshell's cutime+cstime from /proc once it has waited for CMD).
TICKS=$(getconf CLK_TCK)
measure() {
	local label=$1; shift
	local t0 t1
	t0=$(date +%s.%N)
	local cpu
	cpu=$( ( "$@" >>"$OUT/cmd.log" 2>&1 || { echo "FAIL" >&2; exit 1; }
		read -r -a st <"/proc/$BASHPID/stat"
		# Fields 16 and 17 (cutime, cstime), counted from 1, after the
		# command name (field 2), which has no spaces here.
		echo $(( st[15] + st[16] )) ) ) || die "$label failed (see $OUT/cmd.log)"
	t1=$(date +%s.%N)
	awk -v l="$label" -v a="$t0" -v b="$t1" -v c="$cpu" -v hz="$TICKS" 'BEGIN { printf "%s %.3f %.2f\n", l, b - a, c / hz }'
}

log "building postfach and postfach-bench from $ROOT"
(cd "$ROOT" && go build -o "$RUN/postfach" ./cmd/postfach && go build -o "$RUN/postfach-bench" ./cmd/postfach-bench)

log "corpus: $COUNT messages as one mboxrd file"
"$RUN/postfach-bench" corpus --count "$COUNT" --out "$RUN/corpus" >"$OUT/corpus.txt"
python3 - "$RUN/corpus" "$RUN/src/inbox" <<'EOF'
import os, re, sys
src, out = sys.argv[1], sys.argv[2]
os.makedirs(os.path.dirname(out), exist_ok=True)
quote = re.compile(rb'^(>*From )', re.M)
with open(out, 'wb') as f:
    for name in sorted(os.listdir(src)):
        if name.endswith('.eml'):
            data = open(os.path.join(src, name), 'rb').read().replace(b'\r\n', b'\n')
            if not data.endswith(b'\n'):
                data += b'\n'
            f.write(b'From bench@example.org Thu Nov 29 18:15:02 2007\n' + quote.sub(rb'>\1', data) + b'\n')
EOF
chmod -R a+rX "$RUN/src"
MBOX_BYTES=$(stat -c %s "$RUN/src/inbox")
log "mbox: $MBOX_BYTES bytes"

# --- Dovecot --------------------------------------------------------------------
MAIL_USER=pfbench
if ! id "$MAIL_USER" >/dev/null 2>&1; then
	useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$MAIL_USER"
fi
mkdir -p "$RUN/mail" "$RUN/tls" "$RUN/state"
# Dovecot keeps its index of an mbox beside it.
chown -R "$MAIL_USER:$MAIL_USER" "$RUN/src"
chown "$MAIL_USER:$MAIL_USER" "$RUN/mail"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
	-subj "/CN=bench.localhost" -keyout "$RUN/tls/key.pem" -out "$RUN/tls/cert.pem" 2>/dev/null
for i in $(seq "$PAIRS"); do
	echo "imp$i@bench.test:{PLAIN}unused::::::"
done >"$RUN/users"
chmod 644 "$RUN/users"
# Ports below the ephemeral range, apart from compare-dovecot.sh's.
sed -e "s|@RUN@|$RUN|g" -e "s|@MAIL_USER@|$MAIL_USER|g" -e "s|@MAIL_GROUP@|$MAIL_USER|g" \
	-e "s|@MAIL_UID@|$(id -u $MAIL_USER)|g" -e "s|@MAIL_GID@|$(id -g $MAIL_USER)|g" \
	-e "s|@IMAP_PORT@|24143|g" -e "s|@IMAPS_PORT@|24993|g" -e "s|@POP3_PORT@|24110|g" -e "s|@POP3S_PORT@|24995|g" \
	-e "s|@LMTP_PORT@|24424|g" -e "s|@HIBERNATE_TIMEOUT@|0|g" -e "s|scheme=ARGON2ID ||" \
	"$ROOT/bench/dovecot/dovecot.conf.in" >"$RUN/dovecot.conf"
dovecot -c "$RUN/dovecot.conf" || die "dovecot did not start"
for _ in $(seq 50); do [ -s "$RUN/run/master.pid" ] && break; sleep 0.1; done
DC_MASTER=$(cat "$RUN/run/master.pid")

# --- postfach -------------------------------------------------------------------
pf_config() { # data-dir
	cat <<EOF
data_dir = "$1"
hostname = "bench.localhost"
domains = ["bench.test"]
max_message_size = "50MiB"
[listen]
imap = ""
imaps = ""
pop3 = ""
pop3s = ""
lmtp = ""
smtp = ""
submission = ""
submissions = ""
http = ""
web = ""
[log]
level = "warn"
EOF
}

pf_import() { # i
	rm -rf "$RUN/pf"
	mkdir -p "$RUN/pf"
	pf_config "$RUN/pf/data" >"$RUN/pf.toml"
	echo "benchpassword1" | "$RUN/postfach" user add --config "$RUN/pf.toml" --password-stdin "imp$1@bench.test" >/dev/null
	sync
	measure "postfach-import" "$RUN/postfach" import --config "$RUN/pf.toml" "imp$1@bench.test" "$RUN/src/inbox"
}

dc_import() { # i
	rm -rf "$RUN/mail/bench.test/imp$1"
	sync
	measure "dovecot-import" doveadm -c "$RUN/dovecot.conf" import -u "imp$1@bench.test" "mbox:$RUN/src:INBOX=$RUN/src/inbox" "" all
}

: >"$OUT/import.txt"
for i in $(seq "$PAIRS"); do
	if [ $((i % 2)) = 1 ]; then
		pf_import "$i" | tee -a "$OUT/import.txt"
		dc_import "$i" | tee -a "$OUT/import.txt"
	else
		dc_import "$i" | tee -a "$OUT/import.txt"
		pf_import "$i" | tee -a "$OUT/import.txt"
	fi
done
DC_COUNT=$(doveadm -c "$RUN/dovecot.conf" mailbox status -u "imp1@bench.test" messages INBOX | sed 's/messages=//')
PF_COUNT=$("$RUN/postfach" user list --config "$RUN/pf.toml" | awk '{print $0}')
log "messages in Dovecot's INBOX: $DC_COUNT; postfach: $PF_COUNT"

# --- the disk, backup, verify ---------------------------------------------------
: >"$OUT/disk.txt"
for _ in 1 2; do
	dd if=/dev/zero of="$RUN/dd" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1 | sed 's/^/dd write: /' | tee -a "$OUT/disk.txt"
	dd if="$RUN/dd" of=/dev/null bs=1M iflag=direct 2>&1 | tail -1 | sed 's/^/dd read: /' | tee -a "$OUT/disk.txt"
	rm -f "$RUN/dd"
done
: >"$OUT/backup.txt"
# A new root each time (not the same one removed and made again: ext4
# then spends the time looking for recently deleted inodes).
for i in $(seq "$PAIRS"); do
	sync
	measure "backup" "$RUN/postfach" backup --config "$RUN/pf.toml" "$RUN/backups$i" | tee -a "$OUT/backup.txt"
	measure "verify" "$RUN/postfach" backup verify --config "$RUN/pf.toml" "$RUN/backups$i" | tee -a "$OUT/backup.txt"
done
BACKUP_BYTES=$(du -sb "$RUN/backups1" | cut -f1)


# --- report ---------------------------------------------------------------------
{
	echo "## backup-speed $(date -u +%Y-%m-%dT%H:%MZ), $COUNT messages, $MBOX_BYTES bytes of mbox, $PAIRS pairs"
	echo
	echo "| run | wall s | msgs/s | CPU s per 1,000 msgs |"
	echo "|---|---|---|---|"
	awk -v n="$COUNT" '{ printf "| %s | %.2f | %.0f | %.2f |\n", $1, $2, n / $2, $3 * 1000 / n }' "$OUT/import.txt"
	for l in postfach-import dovecot-import; do
		med=$(awk -v l="$l" '$1 == l { print $2 }' "$OUT/import.txt" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
		cpu=$(awk -v l="$l" '$1 == l { c += $3; k++ } END { print c / k }' "$OUT/import.txt")
		awk -v l="$l" -v m="$med" -v c="$cpu" -v n="$COUNT" 'BEGIN { printf "| %s, median | %.2f | %.0f | %.2f |\n", l, m, n / m, c * 1000 / n }'
	done
	echo
	echo "Disk (dd, 1 GiB):"
	sed 's/^/    /' "$OUT/disk.txt"
	echo
	echo "Backup and verify of $BACKUP_BYTES bytes (the size of one backup: bodies and records):"
	echo
	echo "| run | wall s | MB/s | CPU s |"
	echo "|---|---|---|---|"
	awk -v b="$BACKUP_BYTES" '{ printf "| %s | %.2f | %.0f | %.2f |\n", $1, $2, b / $2 / 1e6, $3 }' "$OUT/backup.txt"
} | tee "$OUT/report.md"
