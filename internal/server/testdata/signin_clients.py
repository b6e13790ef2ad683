# Outside clients for the sign-in tests: Python's imaplib and poplib.
# usage: signin_clients.py HOST IMAPPORT POP3PORT USER ACCOUNTPW DEVICEPW MODE
# MODE "allowed": the account password and the device password both sign
# in, with LOGIN, AUTHENTICATE PLAIN and USER/PASS.
# MODE "required": device passwords are required: the account password is
# refused by every one of them, the device password accepted.
import base64
import imaplib
import poplib
import sys

host, imap_port, pop_port, user, account_pw, device_pw, mode = sys.argv[1:8]
imap_port, pop_port = int(imap_port), int(pop_port)


def imap_login(pw):
    m = imaplib.IMAP4(host, imap_port, timeout=60)
    try:
        m.login(user, pw)
        m.select("INBOX")
        m.logout()
        return True
    except imaplib.IMAP4.error as e:
        assert "AUTHENTICATIONFAILED" in str(e), e
        return False


def imap_plain(pw):
    m = imaplib.IMAP4(host, imap_port, timeout=60)
    assert "AUTH=PLAIN" in m.capabilities, m.capabilities
    try:
        m.authenticate("PLAIN", lambda _: ("\0" + user + "\0" + pw).encode())
        m.logout()
        return True
    except imaplib.IMAP4.error as e:
        assert "AUTHENTICATIONFAILED" in str(e), e
        return False


def pop_login(pw):
    p = poplib.POP3(host, pop_port, timeout=60)
    p.user(user)
    try:
        p.pass_(pw)
    except poplib.error_proto as e:
        assert e.args[0].startswith(b"-ERR [AUTH]"), e
        p.quit()
        return False
    p.stat()
    p.quit()
    return True


for f in (imap_login, imap_plain, pop_login):
    assert f(device_pw), (f.__name__, "device password refused")
    got = f(account_pw)
    if mode == "allowed":
        assert got, (f.__name__, "account password refused")
    else:
        assert not got, (f.__name__, "account password accepted though device passwords are required")
    assert not f(device_pw[:-1] + ("2" if device_pw[-1] != "2" else "3")), (f.__name__, "wrong device password accepted")
print("ok")
