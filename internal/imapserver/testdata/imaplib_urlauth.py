"""Drive postfach's URLAUTH (RFC 4467, RFC 5524) with Python's imaplib (run by urlauth_test.go).

Usage: imaplib_urlauth.py HOST PORT PASSWORD
bob@example.org has a draft (UID 1 of Drafts) whose part 2 is base64 of
the bytes 00 01 02 03 04 ff; alice@example.org and bob share PASSWORD.
Every step asserts what the server answered; the script prints "ok" at the end.
"""
import imaplib
import re
import sys

host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]

for name in ("GENURLAUTH", "URLFETCH", "RESETKEY"):
    imaplib.Commands[name] = ("AUTH", "SELECTED")


def command(m, name, *args):
    typ, data = m._simple_command(name, *args)
    untagged = m._untagged_response(typ, data, name)
    return typ, untagged[1]


bob = imaplib.IMAP4(host, port)
assert bob.login("bob@example.org", password)[0] == "OK"
typ, caps = bob.capability()
assert typ == "OK" and b" URLAUTH " in caps[0] and b"URLAUTH=BINARY" in caps[0], caps

rump = "imap://bob%40example.org@imap.test/Drafts/;UID=1/;SECTION=2;URLAUTH=user+alice%40example.org"
typ, data = command(bob, "GENURLAUTH", '"' + rump + '"', "INTERNAL")
assert typ == "OK", (typ, data)
m = re.fullmatch(rb'"(.*:internal:[0-9a-f]{64})"', data[0])
assert m and m.group(1).startswith(rump.encode()), data
url = m.group(1).decode()
bob.logout()

alice = imaplib.IMAP4(host, port)
assert alice.login("alice@example.org", password)[0] == "OK"
typ, data = command(alice, "URLFETCH", '"' + url + '"')
assert typ == "OK", (typ, data)
assert data[0] == (('"%s" {8}' % url).encode(), b"AAECAwT/"), data

typ, data = command(alice, "URLFETCH", '("' + url + '" BINARY)')
assert typ == "OK", (typ, data)
assert data[0] == (('"%s" (BINARY ~{6}' % url).encode(), b"\x00\x01\x02\x03\x04\xff"), data

bad = url[:-1] + ("1" if url.endswith("0") else "0")
typ, data = command(alice, "URLFETCH", '"' + bad + '"')
assert typ == "OK" and data == [('"%s" NIL' % bad).encode()], (typ, data)

# alice cannot sign bob's URLs.
try:
    alice._simple_command("GENURLAUTH", '"' + rump + '"', "INTERNAL")
    assert False, "GENURLAUTH of bob's URL accepted"
except alice.error as e:
    assert "your own user" in str(e), e
assert alice.noop()[0] == "OK"
alice.logout()
print("ok")
