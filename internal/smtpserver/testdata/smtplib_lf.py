# Python's smtplib sends messages with LF line endings, as
# smtplib.sendmail(..., msg.as_bytes()) does, over SMTP and LMTP; then
# imaplib reads them back and checks that each is stored as sent, with
# CRLF line endings and no leading period doubled or lost.
# usage: smtplib_lf.py SMTP_HOST SMTP_PORT LMTP_HOST LMTP_PORT IMAP_HOST IMAP_PORT OUT_DIR
import imaplib
import os
import smtplib
import sys
from email.message import EmailMessage

smtp_host, smtp_port, lmtp_host, lmtp_port, imap_host, imap_port, out_dir = sys.argv[1:8]

m = EmailMessage()
m["From"] = "Python <py@remote.example>"
m["To"] = "alice@example.org"
m["Subject"] = "dots in LF-only mail"
m.set_content(".one\n..two\n.\n..\n...\n. a space\nno dot\n.last\n")
first = m.as_bytes()
assert b"\r" not in first and b"\n.one\n" in first, first

# Every line starts with a period, the first one included.
every = b"".join(b"." + line + b"\n" for line in [b"first", b".second", b"", b".", b" ", b"x.y", b"end"])

sent = []
for cls, host, port in [(smtplib.SMTP, smtp_host, smtp_port), (smtplib.LMTP, lmtp_host, lmtp_port)]:
    with cls(host, int(port)) as c:
        for msg in (first, every):
            refused = c.sendmail("py@remote.example", ["alice@example.org"], msg)
            assert not refused, refused
            # smtplib ends the data with CRLF "." CRLF, adding a CRLF when
            # the message does not end in one: that CRLF is part of the
            # message on the wire.
            sent.append(msg if msg.endswith(b"\r\n") else msg + b"\r\n")

# The messages as sent, for `postfach deliver`.
for i, msg in enumerate(sent[:2]):
    with open(os.path.join(out_dir, "msg%d.eml" % i), "wb") as f:
        f.write(msg)

im = imaplib.IMAP4(imap_host, int(imap_port))
im.login("alice@example.org", "secret-password")
typ, _ = im.select("INBOX", readonly=True)
assert typ == "OK", typ
typ, data = im.uid("SEARCH", None, "ALL")
uids = data[0].split()
assert len(uids) == len(sent), (uids, len(sent))
for uid, msg in zip(uids, sent):
    typ, data = im.uid("FETCH", uid, "(BODY.PEEK[])")
    assert typ == "OK", (typ, data)
    stored = data[0][1]
    want = msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    # The server adds Return-Path: and Received: before the message.
    assert stored.endswith(b"\r\n" + want), (stored, want)
    assert b"\n" not in stored.replace(b"\r\n", b""), stored
im.logout()
print("smtplib LF ok: %d messages" % len(sent))
