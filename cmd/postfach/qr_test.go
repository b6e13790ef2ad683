package main

import (
	"image"
	"image/color"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"
	qr "github.com/piglig/go-qr"

	"github.com/postfach/postfach/internal/auth"
)

var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*m")

// qrModules reads a QR code back from writeQR's output: each character is
// two modules, one above the other.
func qrModules(t *testing.T, out, indent string) [][]bool {
	t.Helper()
	var rows [][]bool
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		line, ok := strings.CutPrefix(line, indent)
		if !ok {
			t.Fatalf("line without the indent: %q", line)
		}
		line = ansiEscape.ReplaceAllString(line, "")
		var top, bottom []bool
		for _, r := range line {
			switch string(r) {
			case qrBoth:
				top, bottom = append(top, true), append(bottom, true)
			case qrTop:
				top, bottom = append(top, true), append(bottom, false)
			case qrBottom:
				top, bottom = append(top, false), append(bottom, true)
			case qrNone:
				top, bottom = append(top, false), append(bottom, false)
			default:
				t.Fatalf("unexpected character %q in %q", r, line)
			}
		}
		rows = append(rows, top, bottom)
	}
	if len(rows) > 0 && len(rows) > len(rows[0]) { // the last line's lower half is padding
		rows = rows[:len(rows)-1]
	}
	return rows
}

// qrImage draws modules as a black-on-white image, scale pixels each.
func qrImage(mods [][]bool, scale int) image.Image {
	n := len(mods)
	img := image.NewGray(image.Rect(0, 0, n*scale, n*scale))
	for y := range n * scale {
		for x := range n * scale {
			c := color.Gray{Y: 255}
			if mods[y/scale][x/scale] {
				c = color.Gray{Y: 0}
			}
			img.SetGray(x, y, c)
		}
	}
	return img
}

// TestQRRoundTrip: the code printed in the terminal, read back from the
// text, is square with its quiet zone, holds exactly the library's
// modules, and decodes (by an independent decoder, ZXing's) to the link.
func TestQRRoundTrip(t *testing.T) {
	tok, _, err := auth.NewSetupLink(1, "phone", "abcdefghjkmnpqrstuvwxyz23456", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	links := []string{
		"https://mail.example.org/setup/" + tok,
		"https://mail.example.org/setup/q3Zr0XW-b_9Aa1Bb2Cc3Dd4Ee5F",
		"https://mx.test.example:8443/setup/AAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"https://a-very-long-host-name.mail.department.example.co.uk:44443/setup/zzzzzzzzzzzzzzzzzzzzzzzzzzz",
	}
	for _, link := range links {
		for _, colors := range []bool{false, true} {
			var b strings.Builder
			if err := writeQR(&b, link, "  ", colors); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if colors != strings.Contains(out, qrColors) {
				t.Fatalf("colors=%v: output %q", colors, out)
			}
			mods := qrModules(t, out, "  ")
			code, err := qr.EncodeText(link, qr.Medium)
			if err != nil {
				t.Fatal(err)
			}
			n := code.Size()
			side := n + 2*qrQuietZone
			if len(mods) != side {
				t.Fatalf("%d rows, want %d", len(mods), side)
			}
			for y, row := range mods {
				if len(row) != side {
					t.Fatalf("row %d has %d modules, want %d", y, len(row), side)
				}
				for x, dark := range row {
					in := x >= qrQuietZone && y >= qrQuietZone && x < qrQuietZone+n && y < qrQuietZone+n
					want := in && code.Module(x-qrQuietZone, y-qrQuietZone)
					if dark != want {
						t.Fatalf("module (%d,%d) is %v, want %v (quiet zone: %v)", x, y, dark, want, !in)
					}
				}
			}
			bmp, err := gozxing.NewBinaryBitmapFromImage(qrImage(mods, 4))
			if err != nil {
				t.Fatal(err)
			}
			// PURE_BARCODE: the image is a generated code, not a photo,
			// so ZXing reads the modules straight off the grid (its photo
			// detector misjudges the module size of some such images);
			// format, mask, error correction and data are decoded by
			// ZXing's own code all the same.
			res, err := zxqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
			if err != nil {
				t.Fatalf("%s: decode: %v", link, err)
			}
			if res.GetText() != link {
				t.Fatalf("decoded %q, want %q", res.GetText(), link)
			}
		}
	}
}
