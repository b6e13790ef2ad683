#!/usr/bin/env python3
"""POP3 retrieval timed with outside clients written in Python (issue 13).

    bench/pop3-python.py --server postfach=127.0.0.1:23110 --server dovecot=127.0.0.1:21110
                         [--mode poplib|raw|pipelined] [--tls] [--repeats 5] [--warmup 1]
                         [--user U] [--password P] [--case NAME] [--json FILE]
                         [--pid postfach=PID --pid dovecot=PID --pid-tree dovecot]
    bench/pop3-python.py --addr 127.0.0.1:110 --label NAME [--pid PID [--pid-tree]] ...

Each retrieval logs in (not timed), then times LIST, UIDL, RETR of every
message and QUIT, as postfach-bench's pop3 workload does. With several
--server, the retrievals alternate between the servers (A B B A A B ...),
so that a machine busy with other work slows them alike; each server's
figure is the median of its --repeats retrievals, after --warmup untimed
ones (the first retrieval also marks every message \\Seen on both).

--mode poplib     poplib.POP3 (POP3_SSL with --tls), one command at a time:
                  what most Python programs do. poplib reads every line
                  with readline() from a buffered socket file (8 KiB
                  reads); each RETR is checked against its LIST size.
--mode raw        one command at a time on a plain socket, replies read in
                  --read-size pieces and split at CRLF "." CRLF: a client
                  whose own cost is small, waiting for every response.
--mode pipelined  the same, with every RETR sent at once when the server
                  offers PIPELINING (RFC 2449 §6.6).

It prints one line per server and one JSON line per server in
postfach-bench's result format, so `postfach-bench report` pairs them by
--case like the Go workloads' lines. --pid gives a server's CPU time over
its retrievals (from /proc; --pid-tree adds all descendants, for Dovecot's
processes). Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import poplib
import resource
import socket
import ssl
import sys
import time


def tls_context():
    # Loopback benchmark against self-signed certificates.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def proc_cpu(pids, tree):
    """CPU time in seconds of pids (and, with tree, their descendants):
    the sum over their threads of the time on a CPU that schedstat counts
    in nanoseconds (utime and stime in /proc/PID/stat tick in 10 ms)."""
    if not pids:
        return 0.0
    want = set(pids)
    if tree:
        parent = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
        grew = True
        while grew:
            grew = False
            for pid, ppid in parent.items():
                if ppid in want and pid not in want:
                    want.add(pid)
                    grew = True
    total = 0
    for pid in want:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


class Meter:
    """The server's and this process's CPU time over the timed part of
    each retrieval (the login not included)."""

    def __init__(self, pids, tree):
        self.pids, self.tree = pids, tree
        self.server = self.client = 0.0

    def start(self):
        self.s0, self.c0 = proc_cpu(self.pids, self.tree), self_cpu()

    def stop(self):
        self.client += self_cpu() - self.c0
        self.server += proc_cpu(self.pids, self.tree) - self.s0


def self_cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def retrieve_poplib(host, port, args, meter):
    """One timed retrieval with poplib; returns (seconds, messages, octets)."""
    if args.tls:
        p = poplib.POP3_SSL(host, port, timeout=60, context=tls_context())
    else:
        p = poplib.POP3(host, port, timeout=60)
    p.user(args.user)
    p.pass_(args.password)
    meter.start()
    start = time.perf_counter()
    _, listing, _ = p.list()
    sizes = []
    for line in listing:
        n, size = line.split()[:2]
        sizes.append((int(n), int(size)))
    p.uidl()
    total = 0
    for n, size in sizes:
        _, _, octets = p.retr(n)
        # octets: the message as poplib rebuilt it (stuffing removed, CRLF
        # counted); it must be the size LIST announced (RFC 1939 §5).
        if octets != size:
            raise RuntimeError(f"RETR {n}: {octets} octets, LIST said {size}")
        total += octets
    p.quit()
    elapsed = time.perf_counter() - start
    meter.stop()
    return elapsed, len(sizes), total


class Reader:
    """Replies read from a socket in pieces of a given size."""

    def __init__(self, sock, size):
        self.sock, self.size = sock, size
        self.buf = bytearray()
        self.pos = 0

    def fill(self):
        b = self.sock.recv(self.size)
        if not b:
            raise RuntimeError("connection closed by the server")
        del self.buf[:self.pos]  # cheap at the front of a bytearray
        self.pos = 0
        self.buf += b

    def line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                out = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return out
            self.fill()

    def multi(self, keep=False, verify=None):
        """The rest of a multi-line reply after its status line, up to the
        terminating "." line (RFC 1939 §3). Returns the length of the body
        as sent (still stuffed), or with keep the body itself. verify, an
        octet count, is compared with the body with its stuffing removed."""
        while len(self.buf) - self.pos < 3:
            self.fill()
        if self.buf.startswith(b".\r\n", self.pos):
            self.pos += 3
            body = b"" if keep else 0
            end = start = self.pos
        else:
            # A body ends with CRLF, so its end is the first CRLF "." CRLF
            # (a stuffed line begins ".." and never matches).
            look = 0  # where to search next, from self.pos
            while True:
                i = self.buf.find(b"\r\n.\r\n", self.pos + look)
                if i >= 0:
                    break
                look = max(0, len(self.buf) - self.pos - 4)
                self.fill()
            start, end = self.pos, i + 2
            body = bytes(self.buf[start:end]) if keep else end - start
            self.pos = i + 5
        if verify is not None:
            stuffed = self.buf.count(b"\r\n..", max(start - 2, 0), end)
            if self.buf.startswith(b"..", start) and start < end:
                stuffed += 1
            if end - start - stuffed != verify:
                raise RuntimeError(f"{end - start - stuffed} octets unstuffed, LIST said {verify}")
        return body


def status(rd, what):
    line = rd.line()
    if not line.startswith(b"+OK"):
        raise RuntimeError(f"{what}: {line[:200]!r}")
    return line


def retrieve_raw(host, port, args, meter):
    """One timed retrieval on a plain socket, one RETR at a time or
    pipelined; returns (seconds, messages, octets as sent)."""
    sock = socket.create_connection((host, port), timeout=60)
    if args.tls:
        sock = tls_context().wrap_socket(sock)
    rd = Reader(sock, args.read_size)
    status(rd, "greeting")
    sock.sendall(b"CAPA\r\n")
    status(rd, "CAPA")
    caps = rd.multi(keep=True).split(b"\r\n")
    pipelining = any(c.split()[:1] == [b"PIPELINING"] for c in caps)
    sock.sendall(f"USER {args.user}\r\n".encode())
    status(rd, "USER")
    sock.sendall(f"PASS {args.password}\r\n".encode())
    status(rd, "PASS")
    meter.start()
    start = time.perf_counter()
    sock.sendall(b"LIST\r\n")
    status(rd, "LIST")
    listing = [l.split() for l in rd.multi(keep=True).split(b"\r\n") if l]
    nums = [int(l[0]) for l in listing]
    sizes = [int(l[1]) for l in listing]
    sock.sendall(b"UIDL\r\n")
    status(rd, "UIDL")
    rd.multi()
    window = 1
    if args.mode == "pipelined" and pipelining:
        window = args.window if args.window > 0 else len(nums)
    total, sent = 0, 0
    for done in range(len(nums)):
        if sent < len(nums) and sent - done < window:
            upto = min(len(nums), done + window)
            sock.sendall(b"".join(b"RETR %d\r\n" % m for m in nums[sent:upto]))
            sent = upto
        status(rd, f"RETR {nums[done]}")
        total += rd.multi(verify=sizes[done] if args.verify else None)
    sock.sendall(b"QUIT\r\n")
    status(rd, "QUIT")
    elapsed = time.perf_counter() - start
    meter.stop()
    sock.close()
    return elapsed, len(nums), total


def labelled(values, what):
    """LABEL=VALUE arguments as a dict."""
    out = {}
    for v in values:
        label, sep, value = v.partition("=")
        if not sep:
            raise SystemExit(f"pop3-python: {what} wants LABEL=VALUE, got {v!r}")
        out[label] = value
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", action="append", default=[], help="LABEL=HOST:PORT; several alternate")
    ap.add_argument("--addr", default="", help="HOST:PORT of a single server (with --label)")
    ap.add_argument("--label", default="server")
    ap.add_argument("--tls", action="store_true", help="implicit TLS (pop3s); the certificate is not verified")
    ap.add_argument("--mode", choices=["poplib", "raw", "pipelined"], default="poplib")
    ap.add_argument("--user", default="pop1@bench.test")
    ap.add_argument("--password", default="benchpass")
    ap.add_argument("--repeats", type=int, default=5, help="timed retrievals per server")
    ap.add_argument("--warmup", type=int, default=0, help="untimed retrievals per server first")
    ap.add_argument("--read-size", type=int, default=65536, help="recv size of --mode raw and pipelined")
    ap.add_argument("--window", type=int, default=0, help="RETRs in flight in --mode pipelined (0: all)")
    ap.add_argument("--verify", action="store_true", help="raw, pipelined: check each message against its LIST size")
    ap.add_argument("--case", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--pid", action="append", default=[], help="PID, or LABEL=PID with --server")
    ap.add_argument("--pid-tree", action="append", default=[], nargs="?", const="",
                    help="count the descendants of the server's PID too (LABEL with --server)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    servers = labelled(args.server, "--server")
    if args.addr:
        servers[args.label] = args.addr
    if not servers:
        raise SystemExit("pop3-python: name a server with --server LABEL=HOST:PORT or --addr")
    pids = {}
    for p in args.pid:
        label, sep, pid = p.rpartition("=")
        pids.setdefault(label if sep else next(iter(servers)), []).append(int(pid))
    trees = {t or next(iter(servers)) for t in args.pid_tree}
    case = args.case or f"pop3-python-{args.mode}" + ("-tls" if args.tls else "")
    run = retrieve_poplib if args.mode == "poplib" else retrieve_raw
    labels = list(servers)

    meters = {l: Meter(pids.get(l), l in trees) for l in labels}

    def one(label, meter):
        host, _, port = servers[label].rpartition(":")
        return run(host, int(port), args, meter)

    for _ in range(args.warmup):
        for label in labels:
            one(label, Meter(None, False))
    times = {l: [] for l in labels}
    got = {}
    began = datetime.datetime.now(datetime.timezone.utc)
    for i in range(max(args.repeats, 1)):
        # A B, B A, A B, ...: neither server always goes first.
        for label in labels if i % 2 == 0 else labels[::-1]:
            t, msgs, octets = one(label, meters[label])
            times[label].append(t)
            got[label] = (msgs, octets)
            if not args.quiet:
                print(f"pop3-python {case} {label}: run {i + 1}: {t:.3f} s, {msgs} messages, "
                      f"{octets / 1e6:.1f} MB", file=sys.stderr)

    def metric(name, value, unit, better=""):
        m = {"name": name, "value": value, "unit": unit}
        if better:
            m["better"] = better
        return m

    load = os.getloadavg()[0]
    for label in labels:
        ts = sorted(times[label])
        med = ts[len(ts) // 2]  # the upper middle of an even count, as postfach-bench
        msgs, octets = got[label]
        n = len(ts)
        cli, srv = meters[label].client, meters[label].server
        res = {
            "bench": "pop3-python",
            "case": case,
            "label": label,
            "addr": servers[label],
            "time": began.isoformat().replace("+00:00", "Z"),
            "seconds": sum(ts),
            "params": {"mode": args.mode, "tls": args.tls, "repeats": n, "warmup": args.warmup,
                       "messages": msgs, "read_size": 8192 if args.mode == "poplib" else args.read_size,
                       "python": platform.python_version(), "loadavg": round(load, 2),
                       "runs_s": [round(t, 4) for t in times[label]]},
            "metrics": [
                metric("retrieve_min_s", ts[0], "s", "lower"),
                metric("retrieve_median_s", med, "s", "lower"),
                metric("msgs_per_s", msgs / med, "msg/s"),
                metric("mb_per_s", octets / 1e6 / med, "MB/s"),
                metric("messages", msgs, "msg"),
            ],
            # CPU over the timed part of this server's retrievals.
            "client_cpu": {"seconds": cli, "cores": cli / sum(ts)},
        }
        if label in pids:
            res["server_cpu"] = {"seconds": srv, "cores": srv / sum(ts)}
            res["metrics"].append(metric("server_cpu_per_retrieval_s", srv / n, "s", "lower"))
        line = json.dumps(res, separators=(",", ":"))
        print(f"pop3-python {case} {label}: median {med:.3f} s, min {ts[0]:.3f} s of {n}; "
              f"{msgs} messages, {octets / 1e6:.1f} MB; client CPU {cli / n:.3f} s"
              + (f", server CPU {srv / n:.3f} s" if label in pids else "") + " per retrieval"
              + f"; load average {load:.2f}")
        print(line)
        if args.json:
            with open(args.json, "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
