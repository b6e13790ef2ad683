"""Drive postfach's IMAP server with Python's imaplib (run by clients_test.go).

Usage: imaplib_client.py HOST PORT USER PASSWORD
Every step asserts what the server answered; the script prints "ok" at the end.
"""
import imaplib
import sys
import time

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

m = imaplib.IMAP4(host, port)
typ, caps = m.capability()
assert typ == "OK", caps
assert b"IMAP4rev1" in caps[0] and b"STARTTLS" in caps[0], caps
typ, _ = m.login(user, password)
assert typ == "OK"

typ, boxes = m.list()
assert typ == "OK"
names = [b.decode().rsplit(" ", 1)[1] for b in boxes]
assert "INBOX" in names and "Sent" in names, names
typ, _ = m.create("Python/Sub")
assert typ == "OK"
typ, data = m.lsub()
assert typ == "OK", data

msg = b"From: Py <py@example.org>\r\nTo: alice@example.org\r\nSubject: from python\r\nDate: Mon, 4 Mar 2024 09:00:00 +0000\r\nMessage-ID: <py1@example.org>\r\n\r\nHello from imaplib.\r\n"
typ, data = m.append("INBOX", r"(\Draft)", imaplib.Time2Internaldate(time.time()), msg)
assert typ == "OK" and b"APPENDUID" in data[0], data

typ, data = m.select("INBOX")
assert typ == "OK", data
count = int(data[0])
assert count == 3, data

items = "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT)] BODY.PEEK[]<0.10> RFC822.HEADER BINARY.PEEK[1] BINARY.SIZE[1])"
typ, data = m.fetch("1:*", items)
assert typ == "OK", data
joined = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
assert joined.count(b"ENVELOPE") == 3, joined[:500]
assert b"Hello from imaplib." in joined
typ, data = m.fetch("3", "(FLAGS)")
assert typ == "OK" and b"\\Draft" in data[0], data
typ, data = m.fetch("1:*", "FAST")
assert typ == "OK" and len(data) == 3, data
typ, data = m.fetch("1", "FULL")
assert typ == "OK", data
typ, data = m.fetch("1", "ALL")
assert typ == "OK", data
typ, data = m.fetch("1", "(RFC822)")
assert typ == "OK" and b"\\Seen" in b"".join(x if isinstance(x, bytes) else x[0] for x in data), data
typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
assert typ == "OK" and len(data) == 3, data

typ, data = m.search(None, "ALL")
assert typ == "OK" and data[0].split() == [b"1", b"2", b"3"], data
typ, data = m.search(None, "SUBJECT", '"from python"')
assert typ == "OK" and data[0] == b"3", data
typ, data = m.search("UTF-8", "BODY", "imaplib")
assert typ == "OK" and data[0] == b"3", data
typ, data = m.uid("SEARCH", "UNSEEN")
assert typ == "OK", data
typ, data = m.sort("(REVERSE ARRIVAL)", "UTF-8", "ALL")
assert typ == "OK" and data[0] == b"3 1 2", data  # 1 and 2 arrived at the same time
typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
assert typ == "OK", data

typ, data = m.store("1", "+FLAGS", r"(\Flagged)")
assert typ == "OK" and b"\\Flagged" in data[0], data
typ, data = m.store("1:2", "-FLAGS.SILENT", r"(\Seen)")
assert typ == "OK", data
typ, data = m.copy("1:2", "Archive")
assert typ == "OK", data
typ, data = m._simple_command("MOVE", "1", "Trash")
assert typ == "OK", data
typ, data = m.store("1", "+FLAGS", r"(\Deleted)")
assert typ == "OK", data
typ, data = m.expunge()
assert typ == "OK" and data[-1] == b"1", data  # imaplib also keeps the EXPUNGE of the MOVE
typ, data = m.status("Archive", "(MESSAGES UIDNEXT UNSEEN)")
assert typ == "OK" and b"MESSAGES 2" in data[0], data
typ, _ = m.noop()
assert typ == "OK"
typ, _ = m.close()
assert typ == "OK"
typ, _ = m.rename("Python/Sub", "Python/Renamed")
assert typ == "OK"
typ, _ = m.delete("Python/Renamed")
assert typ == "OK"
typ, _ = m.logout()
assert typ == "BYE"
print("ok")
