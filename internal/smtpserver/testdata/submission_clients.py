"""Drive postfach's submission with Python's smtplib and imaplib (run by submission_python_test.go).

Usage: submission_clients.py HOST SUBMISSION_PORT SUBMISSIONS_PORT IMAP_PORT PASSWORD
alice@example.org and bob@example.org share PASSWORD; the server's name is
mx.test.example. Every step asserts what the server answered; the script
prints "ok" at the end.
"""
import email.message
import imaplib
import re
import smtplib
import ssl
import sys
import time

host, sub_port, subs_port, imap_port, password = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

for name in ("GENURLAUTH",):
    imaplib.Commands[name] = ("AUTH", "SELECTED")


def message(subject, msgid, sender="alice@example.org"):
    m = email.message.EmailMessage()
    m["From"] = "Alice <%s>" % sender
    m["To"] = "bob@example.org"
    m["Subject"] = subject
    m["Message-ID"] = msgid
    m["Date"] = email.utils.formatdate()
    m.set_content("Hello Bob,\n.a line with a leading period\nbye\n")
    return m


import email.utils

# 1. STARTTLS, AUTH (smtplib picks the mechanism), send to a local and a
# remote recipient; the Bcc header goes to nobody but is in Sent.
with smtplib.SMTP(host, sub_port) as s:
    s.starttls(context=ctx)
    s.login("alice@example.org", password)
    m = message("via starttls", "<py-starttls@client.example>")
    m["Bcc"] = "carol@remote.example"
    refused = s.send_message(m)
    assert refused == {}, refused

# 2. Implicit TLS; spoofed sender and From: are refused.
with smtplib.SMTP_SSL(host, subs_port, context=ctx) as s:
    s.login("alice@example.org", password)
    try:
        s.sendmail("bob@example.org", ["bob@example.org"], message("x", "<py-x@client.example>").as_bytes())
        assert False, "spoofed envelope sender accepted"
    except smtplib.SMTPSenderRefused as e:
        assert e.smtp_code == 553, e
    try:
        s.sendmail("alice@example.org", ["bob@example.org"], message("y", "<py-y@client.example>", sender="bob@example.org").as_bytes())
        assert False, "spoofed From: accepted"
    except smtplib.SMTPDataError as e:
        assert e.smtp_code == 550 and b"5.7.1" in e.smtp_error, e
    m = message("via implicit tls", "<py-implicit@client.example>")
    assert s.send_message(m) == {}

# 3. The client saves its own copy in Sent as well (as many do): the
# server keeps its one copy, adds the flags, and answers with its UID.
imap = imaplib.IMAP4(host, imap_port)
assert imap.login("alice@example.org", password)[0] == "OK"
typ, data = imap.select("Sent")
assert typ == "OK" and data == [b"2"], data
typ, data = imap.uid("SEARCH", "HEADER", "Message-ID", "<py-implicit@client.example>")
assert typ == "OK" and len(data[0].split()) == 1, data
server_uid = data[0].split()[0]
typ, data = imap.append("Sent", r"(\Seen $Saved)", imaplib.Time2Internaldate(time.time()), m.as_bytes())
assert typ == "OK", (typ, data)
code = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
assert code and code.group(2) == server_uid, (data, server_uid)
typ, data = imap.noop()
typ, data = imap.status("Sent", "(MESSAGES)")
assert b"MESSAGES 2" in data[0], data
typ, data = imap.uid("FETCH", server_uid, "(FLAGS)")
assert typ == "OK" and b"$Saved" in data[0] and b"\\Seen" in data[0], data
# Another message, never submitted, is appended as usual.
other = message("only appended", "<py-other@client.example>")
typ, data = imap.append("Sent", None, None, other.as_bytes())
code = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
assert typ == "OK" and code and int(code.group(2)) > int(server_uid), data
typ, data = imap.status("Sent", "(MESSAGES)")
assert b"MESSAGES 3" in data[0], data

# 4. BURL (RFC 4468): a draft in Drafts, a URL signed for the submission
# server, and the message sent without being uploaded again.
draft = message("from a draft", "<py-draft@client.example>").as_bytes()
typ, data = imap.append("Drafts", r"(\Draft)", None, draft)
code = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
assert typ == "OK" and code, data
uidvalidity, uid = code.group(1).decode(), code.group(2).decode()
rump = "imap://alice%%40example.org@mx.test.example/Drafts;UIDVALIDITY=%s/;UID=%s;URLAUTH=submit+alice%%40example.org" % (uidvalidity, uid)
typ, data = imap._simple_command("GENURLAUTH", '"' + rump + '"', "INTERNAL")
typ, data = imap._untagged_response(typ, data, "GENURLAUTH")
assert typ == "OK", (typ, data)
url = re.fullmatch(rb'"(.*)"', data[0]).group(1).decode()
imap.logout()

with smtplib.SMTP_SSL(host, subs_port, context=ctx) as s:
    s.ehlo()
    assert s.has_extn("burl") and "imap" in s.esmtp_features["burl"], s.esmtp_features
    s.login("alice@example.org", password)
    code, resp = s.mail("alice@example.org")
    assert code == 250, (code, resp)
    code, resp = s.rcpt("bob@example.org")
    assert code == 250, (code, resp)
    code, resp = s.docmd("BURL", url + " LAST")
    assert code == 250, (code, resp)
    # A URL that was changed is refused, and the session goes on.
    s.mail("alice@example.org")
    s.rcpt("bob@example.org")
    code, resp = s.docmd("BURL", url[:-1] + ("1" if url.endswith("0") else "0") + " LAST")
    assert code == 554 and b"5.6.6" in resp, (code, resp)
    assert s.noop()[0] == 250

bob = imaplib.IMAP4(host, imap_port)
assert bob.login("bob@example.org", password)[0] == "OK"
typ, data = bob.select("INBOX")
assert data == [b"3"], data
typ, data = bob.search(None, "SUBJECT", '"from a draft"')
assert len(data[0].split()) == 1, data
typ, data = bob.fetch(data[0].split()[0], "(BODY.PEEK[TEXT])")
assert b"\r\n..a line" not in data[0][1] and b"\r\n.a line with a leading period" in data[0][1], data
typ, data = bob.search(None, "HEADER", "Bcc", "carol")
assert data == [b""], data
bob.logout()
print("ok")
