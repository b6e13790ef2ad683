#!/bin/bash
# bench/fetch-large.sh — server CPU for IMAP FETCH BODY.PEEK[] of large
# messages (those kept in files, over 128 KiB), with Python's imaplib as
# the client on loopback. On demand, not part of CI.
#
#   bench/fetch-large.sh [ROUNDS]     # default 150 rounds over the large messages
#
# It builds postfach and postfach-bench from the working tree, delivers the
# first 300 messages of the benchmark corpus to one account by LMTP, fetches
# every message over 128 KiB ROUNDS times on one plaintext connection and
# prints the wall time and the server's CPU time (from /proc).
set -euo pipefail
ROUNDS=${1:-150}
SRC=$(cd "$(dirname "$0")/.." && pwd)
RUN=$(mktemp -d /tmp/postfach-fetch.XXXXXX)
trap 'kill $PID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$RUN"' EXIT
(cd "$SRC" && go build -o "$RUN/postfach" ./cmd/postfach && go build -o "$RUN/postfach-bench" ./cmd/postfach-bench)
cat >"$RUN/postfach.toml" <<EOF
data_dir = "$RUN/data"
domains = ["bench.test"]
[listen]
imap = "127.0.0.1:21943"
imaps = ""
pop3 = ""
pop3s = ""
lmtp = "127.0.0.1:21924"
smtp = ""
submission = ""
submissions = ""
http = ""
web = ""
[log]
level = "warn"
EOF
echo benchpass | "$RUN/postfach" user add fb1@bench.test --config "$RUN/postfach.toml" --password-stdin >/dev/null
"$RUN/postfach" serve --config "$RUN/postfach.toml" >"$RUN/serve.log" 2>&1 &
PID=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/21924) 2>/dev/null && break; sleep 0.1; done
"$RUN/postfach-bench" load --addr 127.0.0.1:21924 --users "fb%d@bench.test" --count 1 --per-user 300 --conns 2 --quiet >/dev/null
python3 - "$PID" "$ROUNDS" <<'PY'
import imaplib, os, sys, time
pid, rounds = int(sys.argv[1]), int(sys.argv[2])
def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
m = imaplib.IMAP4("127.0.0.1", 21943)
m.login("fb1@bench.test", "benchpass")
m.select("INBOX", readonly=True)
uids = m.uid("SEARCH", None, "LARGER 131072")[1][0].split()
c0, t0, total = cpu(), time.time(), 0
for _ in range(rounds):
    for u in uids:
        total += len(m.uid("FETCH", u, "(BODY.PEEK[])")[1][0][1])
c1, t1 = cpu(), time.time()
print(f"{len(uids)} large messages x {rounds}, {total/1e6:.0f} MB: wall {t1-t0:.2f} s, server CPU {c1-c0:.2f} s")
m.logout()
PY
