"""dkimpy (Debian's python3-dkim) as an independent DKIM signer and verifier
for postfach's tests.

  dkimpy.py verify RECORDS.json   < message   prints one line per signature: "pass d= s=" or "fail d= s="
  dkimpy.py sign DOMAIN SELECTOR ALG KEYFILE  < message   prints the DKIM-Signature field

RECORDS.json maps DNS names ("sel._domainkey.example.org") to TXT text; the
test gives them, so no real DNS is asked. ALG is rsa-sha256 or
ed25519-sha256; KEYFILE holds a PEM RSA key or the base64 ed25519 seed.
"""
import json
import sys

import dkim


def verify(records_file):
    with open(records_file) as f:
        records = json.load(f)

    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        v = records.get(n.rstrip("."))
        return v.encode() if v is not None else None

    msg = sys.stdin.buffer.read()
    d = dkim.DKIM(msg)
    fields = [v for k, v in dkim.rfc822_parse(msg)[0] if k.lower() == b"dkim-signature"]
    for i in range(len(fields)):
        ok = False
        try:
            ok = d.verify(idx=i, dnsfunc=dnsfunc)
        except dkim.DKIMException as e:
            sys.stderr.write("signature %d: %s\n" % (i, e))
        tags = d.signature_fields if d.signature_fields else {}
        print("%s d=%s s=%s" % ("pass" if ok else "fail",
                                tags.get(b"d", b"").decode(), tags.get(b"s", b"").decode()))


def sign(domain, selector, alg, keyfile):
    with open(keyfile, "rb") as f:
        key = f.read()
    msg = sys.stdin.buffer.read()
    sig = dkim.sign(msg, selector.encode(), domain.encode(), key,
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
                    signature_algorithm=alg.encode())
    sys.stdout.buffer.write(sig)


if __name__ == "__main__":
    if sys.argv[1] == "verify":
        verify(sys.argv[2])
    elif sys.argv[1] == "sign":
        sign(*sys.argv[2:6])
    else:
        sys.exit("unknown mode " + sys.argv[1])
