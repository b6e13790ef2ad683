# An outside SMTP/LMTP client for the server tests: Python's smtplib.
# usage: smtplib_client.py smtp|lmtp HOST PORT
import smtplib
import sys

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
cls = smtplib.LMTP if mode == "lmtp" else smtplib.SMTP
msg = (
    "From: Python <py@remote.example>\r\n"
    "To: alice@example.org\r\n"
    "Subject: smtplib " + mode + "\r\n"
    "\r\n"
    "Sent by smtplib.\r\n"
)

with cls(host, port) as c:
    code, _ = c.ehlo()  # LHLO for smtplib.LMTP
    assert code == 250, code
    assert c.has_extn("size"), c.esmtp_features
    assert not c.has_extn("auth"), "AUTH advertised"
    # A foreign recipient is refused: no relaying.
    try:
        c.sendmail("py@remote.example", ["someone@elsewhere.example"], msg)
        raise SystemExit("relay accepted")
    except smtplib.SMTPRecipientsRefused as e:
        code, text = e.recipients["someone@elsewhere.example"]
        assert code == 550 and text.startswith(b"5.7.1"), (code, text)
    # An unknown local user is refused, the known one gets the message.
    refused = c.sendmail("py@remote.example", ["alice@example.org", "ghost@example.org"], msg)
    code, text = refused["ghost@example.org"]
    assert code == 550 and text.startswith(b"5.1.1"), (code, text)
    assert "alice@example.org" not in refused, refused
print("smtplib " + mode + " ok")
