package imapserver

import (
	"errors"
	"io"
)

// inflater decodes the client's half of COMPRESS=DEFLATE: a raw deflate
// stream (RFC 1951). compress/flate's reader hands out decoded bytes only
// at a sync marker (the empty stored block of Z_SYNC_FLUSH), at the final
// block or when its window is full; clients that end each command with
// Z_PARTIAL_FLUSH (an empty fixed-code block; mbsync does) would wait
// forever for their answer. This inflater returns what it has decoded as
// soon as the next code would need input that has not arrived, so any
// flush the client uses ends its command. It is also small: the 32 KiB
// window and a few hundred bytes of code tables, decoded bit by bit
// (client input is commands and the occasional APPEND).
type inflater struct {
	src  byteSource
	bits uint64 // input bits not yet used, lowest first
	nb   uint   // number of valid bits in bits

	state      uint8
	final      bool // the current block is the last one
	storedLeft int  // bytes left in a stored block
	copyLen    int  // bytes left of a back-reference being copied
	copyDist   int

	win   *[windowSize]byte // allocated on its own: exactly 32 KiB
	wpos  int
	total int // bytes decoded, up to windowSize (valid distances)

	lit, dist huffman
	err       error
}

// byteSource is the compressed input: ReadByte may block; Buffered says
// how many bytes it returns without blocking.
type byteSource interface {
	io.ByteReader
	Buffered() int
}

const (
	windowSize = 1 << 15
	maxBits    = 15 // longest Huffman code (RFC 1951 §3.2.7)
)

// Decoder states.
const (
	stHeader    = iota // at a block header
	stStoredLen        // at LEN and NLEN of a stored block
	stStored           // in a stored block (storedLeft bytes)
	stTables           // at the code tables of a dynamic block
	stHuffman          // in a Huffman-coded block
	stDone             // after the final block
)

var errCorrupt = errors.New("deflate: corrupt input")

func newInflater(src byteSource) *inflater {
	return &inflater{src: src, win: new([windowSize]byte)}
}

// drained reports whether everything decoded has been returned and no
// input bits are pending, so the next Read needs new input.
func (f *inflater) drained() bool {
	return f.copyLen == 0 && f.nb == 0 && f.err == nil
}

// huffman is a canonical Huffman code (RFC 1951 §3.2.2) for bit-by-bit
// decoding: the number of codes of each length and the symbols in code
// order.
type huffman struct {
	count  [maxBits + 1]uint16
	symbol [288]uint16
}

// build sets up the code from the code lengths of the symbols (0: not
// used). An over-subscribed set of lengths is an error; an incomplete
// one is allowed (RFC 1951 permits one distance code), and decoding a
// missing code fails then.
func (h *huffman) build(lengths []uint8) error {
	h.count = [maxBits + 1]uint16{}
	for _, l := range lengths {
		h.count[l]++
	}
	h.count[0] = 0
	left := 1
	for l := 1; l <= maxBits; l++ {
		left <<= 1
		left -= int(h.count[l])
		if left < 0 {
			return errCorrupt
		}
	}
	var offs [maxBits + 2]uint16
	for l := 1; l <= maxBits; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = uint16(sym)
			offs[l]++
		}
	}
	return nil
}

// decode decodes one symbol from the low bits of bits (nb valid); used
// is how many bits it took, ok false when nb bits are not enough (or the
// code does not exist: bad is then set).
func (h *huffman) decode(bits uint64, nb uint) (sym int, used uint, ok, bad bool) {
	code, first, index := 0, 0, 0
	for l := uint(1); l <= maxBits; l++ {
		if l > nb {
			return 0, 0, false, false
		}
		code |= int(bits>>(l-1)) & 1
		count := int(h.count[l])
		if code-first < count {
			return int(h.symbol[index+code-first]), l, true, false
		}
		index += count
		first += count
		first <<= 1
		code <<= 1
	}
	return 0, 0, false, true
}

// Length and distance codes (RFC 1951 §3.2.5).
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// codeLengthOrder is the order of the code length code lengths
	// (RFC 1951 §3.2.7).
	codeLengthOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// fillBuffered moves the input that is there without blocking into the
// bit buffer.
func (f *inflater) fillBuffered() error {
	for f.nb <= 56 && f.src.Buffered() > 0 {
		c, err := f.src.ReadByte()
		if err != nil {
			return err
		}
		f.bits |= uint64(c) << f.nb
		f.nb += 8
	}
	return nil
}

// need makes n (≤ 57) bits available, blocking for input.
func (f *inflater) need(n uint) error {
	for f.nb < n {
		c, err := f.src.ReadByte()
		if err != nil {
			return err
		}
		f.bits |= uint64(c) << f.nb
		f.nb += 8
	}
	return nil
}

// take consumes n available bits.
func (f *inflater) take(n uint) int {
	v := int(f.bits & (1<<n - 1))
	f.bits >>= n
	f.nb -= n
	return v
}

// emit writes a decoded byte to the output and the window.
func (f *inflater) emit(p []byte, n int, c byte) int {
	p[n] = c
	f.win[f.wpos] = c
	f.wpos = (f.wpos + 1) & (windowSize - 1)
	if f.total < windowSize {
		f.total++
	}
	return n + 1
}

// Read decodes into p. It returns as soon as it has decoded something and
// going on would wait for input.
func (f *inflater) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := f.read(p)
	if err != nil {
		if err == io.EOF && f.state != stDone {
			err = io.ErrUnexpectedEOF
		}
		f.err = err
		if n > 0 {
			return n, nil
		}
	}
	return n, err
}

func (f *inflater) read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if f.copyLen > 0 {
			for f.copyLen > 0 && n < len(p) {
				n = f.emit(p, n, f.win[(f.wpos-f.copyDist)&(windowSize-1)])
				f.copyLen--
			}
			continue
		}
		if err := f.fillBuffered(); err != nil {
			return n, err
		}
		// With output at hand, stop where going on would wait for input.
		switch f.state {
		case stDone:
			return n, io.EOF
		case stHeader:
			if n > 0 && f.nb < 3 {
				return n, nil
			}
			if err := f.need(3); err != nil {
				return n, err
			}
			f.final = f.take(1) == 1
			switch f.take(2) {
			case 0:
				// RFC 1951 §3.2.4: LEN and NLEN start at a byte
				// boundary.
				f.take(f.nb % 8)
				f.state = stStoredLen
			case 1:
				f.fixedCodes()
				f.state = stHuffman
			case 2:
				f.state = stTables
			default:
				return n, errCorrupt
			}
		case stStoredLen:
			if n > 0 && f.nb < 32 {
				return n, nil
			}
			if err := f.need(32); err != nil {
				return n, err
			}
			ln, nln := f.take(16), f.take(16)
			if ln != ^nln&0xffff {
				return n, errCorrupt
			}
			f.storedLeft = ln
			f.state = stStored
		case stStored:
			if f.storedLeft == 0 {
				f.endBlock()
				continue
			}
			if n > 0 && f.nb < 8 {
				return n, nil
			}
			if err := f.need(8); err != nil {
				return n, err
			}
			n = f.emit(p, n, byte(f.take(8)))
			f.storedLeft--
		case stTables:
			if n > 0 {
				return n, nil
			}
			if err := f.dynamicCodes(); err != nil {
				return n, err
			}
			f.state = stHuffman
		case stHuffman:
			m, err := f.token(p, n)
			if err != nil {
				return n, err
			}
			if m < 0 {
				return -m - 1, nil
			}
			n = m
		}
	}
	return n, nil
}

// endBlock moves on after a block.
func (f *inflater) endBlock() {
	if f.final {
		f.state = stDone
	} else {
		f.state = stHeader
	}
}

// token decodes one literal, end of block or length/distance pair of a
// Huffman block. When the bits at hand are not enough and n > 0, it
// returns -n-1 instead of waiting for input.
func (f *inflater) token(p []byte, n int) (int, error) {
	for {
		sym, used, ok, bad := f.lit.decode(f.bits, f.nb)
		if bad {
			return n, errCorrupt
		}
		if ok {
			total := used
			var length, dist int
			if sym > 256 {
				// A length: the whole pair must be at hand.
				if sym > 285 {
					return n, errCorrupt
				}
				i := sym - 257
				le := uint(lengthExtra[i])
				if total+le > f.nb {
					ok = false
				} else {
					length = int(lengthBase[i]) + int((f.bits>>total)&(1<<le-1))
					total += le
					dsym, dused, dok, dbad := f.dist.decode(f.bits>>total, f.nb-total)
					if dbad || dok && dsym > 29 {
						return n, errCorrupt
					}
					if !dok {
						ok = false
					} else {
						total += dused
						de := uint(distExtra[dsym])
						if total+de > f.nb {
							ok = false
						} else {
							dist = int(distBase[dsym]) + int((f.bits>>total)&(1<<de-1))
							total += de
						}
					}
				}
			}
			if ok {
				f.take(total)
				switch {
				case sym < 256:
					return f.emit(p, n, byte(sym)), nil
				case sym == 256:
					f.endBlock()
					return n, nil
				}
				if dist > f.total {
					return n, errCorrupt
				}
				f.copyLen, f.copyDist = length, dist
				return n, nil
			}
		}
		// Not enough bits for the next token.
		if n > 0 && f.src.Buffered() == 0 {
			return -n - 1, nil
		}
		if f.nb > 56 {
			return n, errCorrupt // no token is that long
		}
		if err := f.need(f.nb + 1); err != nil {
			return n, err
		}
	}
}

// fixedCodes sets the fixed Huffman codes (RFC 1951 §3.2.6).
func (f *inflater) fixedCodes() {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	_ = f.lit.build(l[:])
	var d [30]uint8
	for i := range d {
		d[i] = 5
	}
	_ = f.dist.build(d[:])
}

// dynamicCodes reads the code tables of a dynamic block (RFC 1951
// §3.2.7). It may wait for input.
func (f *inflater) dynamicCodes() error {
	if err := f.need(14); err != nil {
		return err
	}
	nlen := f.take(5) + 257
	ndist := f.take(5) + 1
	ncode := f.take(4) + 4
	if nlen > 286 || ndist > 30 {
		return errCorrupt
	}
	var lengths [320]uint8
	for i := 0; i < ncode; i++ {
		if err := f.need(3); err != nil {
			return err
		}
		lengths[codeLengthOrder[i]] = uint8(f.take(3))
	}
	var cl huffman
	if err := cl.build(lengths[:19]); err != nil {
		return err
	}
	lengths = [320]uint8{}
	for i := 0; i < nlen+ndist; {
		sym, err := f.decodeBlocking(&cl)
		if err != nil {
			return err
		}
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var val uint8
		switch sym {
		case 16:
			if i == 0 {
				return errCorrupt
			}
			val = lengths[i-1]
			if err := f.need(2); err != nil {
				return err
			}
			rep = 3 + f.take(2)
		case 17:
			if err := f.need(3); err != nil {
				return err
			}
			rep = 3 + f.take(3)
		default:
			if err := f.need(7); err != nil {
				return err
			}
			rep = 11 + f.take(7)
		}
		if i+rep > nlen+ndist {
			return errCorrupt
		}
		for ; rep > 0; rep-- {
			lengths[i] = val
			i++
		}
	}
	if lengths[256] == 0 {
		return errCorrupt // no end-of-block code
	}
	if err := f.lit.build(lengths[:nlen]); err != nil {
		return err
	}
	return f.dist.build(lengths[nlen : nlen+ndist])
}

// decodeBlocking decodes a symbol, waiting for input as needed.
func (f *inflater) decodeBlocking(h *huffman) (int, error) {
	for {
		sym, used, ok, bad := h.decode(f.bits, f.nb)
		if bad {
			return 0, errCorrupt
		}
		if ok {
			f.take(used)
			return sym, nil
		}
		if err := f.need(f.nb + 1); err != nil {
			return 0, err
		}
	}
}
