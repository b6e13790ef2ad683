package imap

// Login is LOGIN (RFC 9051 §6.2.3).
type Login struct {
	CommandBase
	Username string
	Password string
}

// Authenticate is AUTHENTICATE (RFC 9051 §6.2.2), with the optional initial
// response of SASL-IR (RFC 4959). The server sends challenges as
// continuation requests and reads the client's answers with
// Reader.ReadSASLResponse.
type Authenticate struct {
	CommandBase
	// Mechanism is the SASL mechanism name in upper case ("PLAIN").
	Mechanism string
	// HasInitialResponse reports that the client sent an initial response;
	// InitialResponse is it, decoded (empty for "=").
	HasInitialResponse bool
	InitialResponse    []byte
}

// Enable is ENABLE (RFC 9051 §6.3.1, RFC 5161).
type Enable struct {
	CommandBase
	// Capabilities are the names in upper case ("CONDSTORE", "IMAP4REV2",
	// "UTF8=ACCEPT").
	Capabilities []string
}

// ID is ID (RFC 2971).
type ID struct {
	CommandBase
	// Params are the client's field-value pairs in order; nil for "ID NIL".
	Params []IDParam
}

// IDParam is one field of an ID command.
type IDParam struct {
	Key   string
	Value string
	// Nil reports that the value was NIL.
	Nil bool
}

// Compress is COMPRESS (RFC 4978).
type Compress struct {
	CommandBase
	// Algorithm in upper case ("DEFLATE").
	Algorithm string
}

// RFC 2971 §3.3 limits.
const (
	idMaxPairs    = 30
	idMaxKeyLen   = 30
	idMaxValueLen = 1024
)

// parseLogin parses LOGIN SP userid SP password.
func parseLogin(r *Reader, _ bool) Command {
	c := &Login{}
	r.sp()
	c.Username = r.astring("user name")
	r.sp()
	c.Password = r.astring("password")
	return c
}

// parseAuthenticate parses AUTHENTICATE SP auth-type [SP initial-resp].
func parseAuthenticate(r *Reader, _ bool) Command {
	c := &Authenticate{}
	r.sp()
	c.Mechanism = upperString(r.atom("authentication mechanism"))
	if r.maybeSP() {
		// RFC 4959: base64, or "=" for an empty response.
		tok := r.atom("initial response")
		c.HasInitialResponse = true
		if len(tok) == 1 && tok[0] == '=' {
			c.InitialResponse = []byte{}
		} else {
			b, ok := decodeBase64(tok)
			if !ok {
				fail("invalid base64 in initial response")
			}
			c.InitialResponse = b
		}
	}
	return c
}

// parseEnable parses ENABLE 1*(SP capability).
func parseEnable(r *Reader, _ bool) Command {
	c := &Enable{}
	r.sp()
	for {
		c.Capabilities = append(c.Capabilities, upperString(r.atom("capability name")))
		if !r.maybeSP() {
			break
		}
	}
	return c
}

// parseID parses ID SP ("(" string SP nstring *(SP string SP nstring) ")" / NIL).
func parseID(r *Reader, _ bool) Command {
	c := &ID{}
	r.sp()
	if r.isNIL() {
		r.pos += 3
		return c
	}
	c.Params = []IDParam{}
	if r.listStart("ID parameters") {
		return c
	}
	for {
		if len(c.Params) == idMaxPairs {
			fail("too many ID parameters")
		}
		var p IDParam
		p.Key = r.str("ID field name")
		if len(p.Key) > idMaxKeyLen {
			fail("ID field name too long")
		}
		r.sp()
		var ok bool
		p.Value, ok = r.nstring("ID field value")
		p.Nil = !ok
		if len(p.Value) > idMaxValueLen {
			fail("ID field value too long")
		}
		c.Params = append(c.Params, p)
		if !r.listNext("ID parameters") {
			return c
		}
	}
}

// parseCompress parses COMPRESS SP algorithm.
func parseCompress(r *Reader, _ bool) Command {
	c := &Compress{}
	r.sp()
	c.Algorithm = upperString(r.atom("compression algorithm"))
	return c
}
