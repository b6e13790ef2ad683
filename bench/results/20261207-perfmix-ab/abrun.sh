#!/usr/bin/env bash
# abrun.sh N rev... : N alternating rounds of the mixed load
n=$1; shift
cat > /tmp/perfmix/mhook.sh <<'H'
#!/bin/sh
m() { curl -s http://127.0.0.1:25080/metrics | awk '/^postfach_store_commit_(duration_seconds|batch_size)_(sum|count)/{printf "%s ", $2}'; echo; }
m > /tmp/perfmix/mh1.txt
sleep $MSECS
m > /tmp/perfmix/mh2.txt
H
chmod +x /tmp/perfmix/mhook.sh
for i in $(seq $n); do for r in "$@"; do
  out=$(MSECS=${MSECS:-10} HOOK=/tmp/perfmix/mhook.sh HOOK_DELAY=5 ./ab.sh run $r $r "${EXTRA[@]}" 2>/dev/null)
  cps=$(awk '/commands_per_s/{print $2}' <<<"$out")
  cpu=$(grep -o 'server CPU [0-9.]* s' <<<"$out" | awk '{print $3}')
  dur=$(awk '/^== /{print $(NF-1)}' <<<"$out")
  w=$(paste -d' ' /tmp/perfmix/mh1.txt /tmp/perfmix/mh2.txt | awk -v ms=${MSECS:-10} '{n=NF/2; bs=$(n+1)-$1; bc=$(n+2)-$2; ds=$(n+3)-$3; printf "writes/s=%.0f batch=%.1f busy=%.2f us/write=%.0f", bs/ms, bs/bc, ds/ms, ds/bs*1e6}')
  echo "$r round=$i cmd/s=$cps cpu_us/cmd=$(awk -v c=$cpu -v r=$cps -v d=${DUR:-20} 'BEGIN{printf "%.0f", c/(r*(d+3))*1e6}') $w load=$(cut -d' ' -f1 /proc/loadavg)"
done; done
