import sys, time, socket
sys.path.insert(0, "/work/wt/pop3raw/bench")
import importlib.util
spec = importlib.util.spec_from_file_location("p3", "/work/wt/pop3raw/bench/pop3-python.py")
p3 = importlib.util.module_from_spec(spec); spec.loader.exec_module(p3)
port = int(sys.argv[1]); reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
buckets = {}
for r in range(reps):
    s = socket.create_connection(("127.0.0.1", port)); rd = p3.Reader(s, 65536)
    p3.status(rd, "g"); s.sendall(b"USER pop1@bench.test\r\n"); p3.status(rd, "u")
    s.sendall(b"PASS benchpass\r\n"); p3.status(rd, "p")
    s.sendall(b"LIST\r\n"); p3.status(rd, "l")
    listing = [l.split() for l in rd.multi(keep=True).split(b"\r\n") if l]
    for n, size in ((int(a), int(b)) for a, b in listing):
        t = time.perf_counter()
        s.sendall(b"RETR %d\r\n" % n); p3.status(rd, "r"); rd.multi()
        dt = time.perf_counter() - t
        k = "<=8K" if size <= 8192 else "<=32K" if size <= 32768 else "<=128K" if size <= 131072 else "<=1M" if size <= 1 << 20 else ">1M"
        c = buckets.setdefault(k, [0, 0.0, 0])
        c[0] += 1; c[1] += dt; c[2] += size
    s.sendall(b"QUIT\r\n"); p3.status(rd, "q"); s.close()
for k in ["<=8K", "<=32K", "<=128K", "<=1M", ">1M"]:
    if k in buckets:
        c = buckets[k]; print(f"{k:7} n={c[0]/reps:5.0f} total={c[1]/reps*1000:6.1f} ms  per={c[1]/c[0]*1e6:6.1f} us  MB={c[2]/reps/1e6:5.1f}")
