# An outside POP3 client for the pop3server tests: Python's poplib.
# usage: poplib_client.py HOST PORT TLSPORT USER PASSWORD
# Expects three messages in the maildrop; retrieves them over STLS, checks
# sizes and UIDLs, deletes the first; then logs in over implicit TLS with
# AUTH PLAIN (SASL) and checks that two are left.
import poplib
import ssl
import sys

host, port, tlsport, user, password = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

p = poplib.POP3(host, port, timeout=60)
caps = p.capa()
for c in ("TOP", "UIDL", "USER", "STLS", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"):
    assert c in caps, (c, caps)
assert caps["SASL"] == ["SCRAM-SHA-256", "PLAIN", "LOGIN"], caps
p.stls(ctx)
assert "STLS" not in p.capa()
p.user(user)
try:
    p.pass_("wrong password")
    raise SystemExit("wrong password accepted")
except poplib.error_proto as e:
    assert e.args[0].startswith(b"-ERR [AUTH]"), e
p.user(user)
p.pass_(password)
count, size = p.stat()
assert count == 3, (count, size)
resp, listing, _ = p.list()
sizes = [int(l.split()[1]) for l in listing]
assert sum(sizes) == size, (sizes, size)
resp, uidls, _ = p.uidl()
uids = [l.split()[1] for l in uidls]
assert len(set(uids)) == 3, uids
for i in range(1, 4):
    resp, lines, octets = p.retr(i)
    # poplib strips the CRLFs and the stuffing; octets counts what was on
    # the wire including CRLFs (stuffing dots included).
    body = b"\r\n".join(lines) + b"\r\n"
    assert len(body) == sizes[i - 1], (i, len(body), sizes[i - 1])
    assert b"Subject: " in body
resp, lines, _ = p.top(1, 0)
assert lines[-1] == b"", lines
p.dele(1)
p.quit()

p = poplib.POP3_SSL(host, tlsport, context=ctx, timeout=60)
import base64
p._shortcmd("AUTH PLAIN " + base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode())
count, size = p.stat()
assert count == 2, count
resp, uidls2, _ = p.uidl()
assert [l.split()[1] for l in uidls2] == uids[1:], (uidls2, uids)
p.quit()
print("poplib ok")
