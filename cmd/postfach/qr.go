package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	qr "github.com/piglig/go-qr"
	"golang.org/x/term"
)

// A QR code (ISO/IEC 18004) in the terminal, for `device add` to show the
// setup link to a phone's camera. Each character cell holds two modules
// stacked (Unicode half blocks: terminal cells are about twice as high as
// wide, so the modules come out square), and the code has its quiet zone
// of four light modules on every side, without which scanners do not find
// it.

// qrQuietZone is the light border around the code, in modules (ISO/IEC
// 18004 §6.3.8).
const qrQuietZone = 4

// Half blocks: which of the cell's two modules are dark.
const (
	qrBoth   = "█" // U+2588 FULL BLOCK
	qrTop    = "▀" // U+2580 UPPER HALF BLOCK
	qrBottom = "▄" // U+2584 LOWER HALF BLOCK
	qrNone   = " "
)

// ANSI colours for a code that reads the same on dark and light
// terminals: black blocks on a bright white background.
const (
	qrColors = "\x1b[30;107m"
	qrReset  = "\x1b[0m"
)

// writeQR writes a QR code of text, each line after indent. With colors,
// the lines set black on white themselves; without, the dark modules are
// the blocks, as on paper (on a dark terminal the code is then shown
// inverted, which most phone cameras read too).
func writeQR(w io.Writer, text, indent string, colors bool) error {
	// Medium error correction (15%): it survives a smudged or cut-off
	// screen; the library raises it while the code stays the same size.
	code, err := qr.EncodeText(text, qr.Medium)
	if err != nil {
		return fmt.Errorf("qr code: %w", err)
	}
	n := code.Size()
	dark := func(x, y int) bool {
		x, y = x-qrQuietZone, y-qrQuietZone
		return x >= 0 && y >= 0 && x < n && y < n && code.Module(x, y)
	}
	side := n + 2*qrQuietZone
	var b strings.Builder
	for y := 0; y < side; y += 2 {
		b.WriteString(indent)
		if colors {
			b.WriteString(qrColors)
		}
		for x := 0; x < side; x++ {
			top, bottom := dark(x, y), y+1 < side && dark(x, y+1)
			switch {
			case top && bottom:
				b.WriteString(qrBoth)
			case top:
				b.WriteString(qrTop)
			case bottom:
				b.WriteString(qrBottom)
			default:
				b.WriteString(qrNone)
			}
		}
		if colors {
			b.WriteString(qrReset)
		}
		b.WriteByte('\n')
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// qrColorsFor reports whether the QR code on w gets its own colours: when
// w is a terminal and NO_COLOR (no-color.org) is not set.
func qrColorsFor(w io.Writer, getenv func(string) string) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && getenv("NO_COLOR") == ""
}
