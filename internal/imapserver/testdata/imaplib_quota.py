"""Drive postfach's QUOTA (RFC 9208) with Python's imaplib (run by quota_test.go).

Usage: imaplib_quota.py HOST PORT USER PASSWORD
The account holds one message of 2048 octets and has a quota of 8 KiB.
Every step asserts what the server answered; the script prints "ok" at the end.
"""
import imaplib
import sys

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

m = imaplib.IMAP4(host, port)
typ, _ = m.login(user, password)
assert typ == "OK"
typ, caps = m.capability()
assert typ == "OK" and b" QUOTA " in caps[0] and b"QUOTA=RES-STORAGE" in caps[0], caps


def quota():
    typ, data = m.getquota('""')
    assert typ == "OK", data
    return data[0]


typ, data = m.getquotaroot("INBOX")
assert typ == "OK", data
assert data == [[b'"INBOX" ""'], [b'"" (STORAGE 2 8)']] or data == [[b'INBOX ""'], [b'"" (STORAGE 2 8)']], data
assert quota() == b'"" (STORAGE 2 8)', quota()

msg = b"Subject: from python\r\n\r\n" + b"p" * 3000 + b"\r\n"
typ, data = m.append("INBOX", None, None, msg)
assert typ == "OK", data
assert quota() == b'"" (STORAGE 5 8)', quota()

typ, data = m.status("INBOX", "(MESSAGES SIZE DELETED DELETED-STORAGE)")
assert typ == "OK", data
assert data[0].endswith(b"(MESSAGES 2 DELETED 0 SIZE 5074 DELETED-STORAGE 0)"), data

big = b"Subject: too big\r\n\r\n" + b"b" * 4000 + b"\r\n"
typ, data = m.append("INBOX", None, None, big)
assert typ == "NO" and b"[OVERQUOTA]" in data[0], (typ, data)
typ, data = m.noop()
assert typ == "OK", data

typ, data = m.select("INBOX")
assert typ == "OK", data
typ, data = m.store("2", "+FLAGS", "(\\Deleted)")
assert typ == "OK", data
typ, data = m.status("INBOX", "(DELETED DELETED-STORAGE)")
assert typ == "OK" and data[0].endswith(b"(DELETED 1 DELETED-STORAGE 3)"), data
typ, data = m.expunge()
assert typ == "OK", data
assert quota() == b'"" (STORAGE 2 8)', quota()

typ, data = m.append("INBOX", None, None, big)
assert typ == "OK", data

typ, data = m.setquota('""', "(STORAGE 99999)")
assert typ == "NO", data
m.logout()
print("ok")
