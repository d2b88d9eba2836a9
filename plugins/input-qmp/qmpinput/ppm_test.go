package qmpinput

import (
	"bytes"
	"image/png"
	"strings"
	"testing"
)

func TestPPMToPNG(t *testing.T) {
	// 2x1: a red and a blue pixel.
	pix := "\xff\x00\x00\x00\x00\xff"
	cases := []struct {
		name, ppm, wantErr string
	}{
		{"as QEMU writes it", "P6\n2 1\n255\n" + pix, ""},
		{"comments and odd spacing", "P6 # made by hand\n 2\t1\r\n# maxval next\n255 " + pix, ""},
		{"trailing bytes", "P6\n2 1\n255\n" + pix + "xx", ""},
		{"not a PPM", "\x89PNG\r\n", "no P6 header"},
		{"ASCII PPM", "P3\n2 1\n255\n255 0 0 0 0 255", "no P6 header"},
		{"16-bit", "P6\n2 1\n65535\n" + pix + pix, "maxval 65535"},
		{"zero width", "P6\n0 1\n255\n", "field 1 is not a positive number"},
		{"no height", "P6\n2\n", "field 2"},
		{"short pixels", "P6\n2 1\n255\n\xff\x00", "holds 2 bytes of pixels, want 6"},
		{"huge claim", "P6\n100000 100000\n255\n", "claims 100000x100000"},
		{"header runs into pixels", "P6\n2 1\n255", "does not end in whitespace"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, w, h, err := ppmToPNG([]byte(tc.ppm))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil || w != 2 || h != 1 {
				t.Fatalf("%dx%d, %v", w, h, err)
			}
			r, g, bl, a := img.At(0, 0).RGBA()
			r2, g2, bl2, _ := img.At(1, 0).RGBA()
			if r != 0xffff || g != 0 || bl != 0 || a != 0xffff || r2 != 0 || g2 != 0 || bl2 != 0xffff {
				t.Errorf("pixels %v %v", img.At(0, 0), img.At(1, 0))
			}
		})
	}
}

func FuzzDecodePPM(f *testing.F) {
	f.Add([]byte("P6\n2 1\n255\n\xff\x00\x00\x00\x00\xff"))
	f.Add([]byte("P6 #c\n1 1 255 abc"))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := decodePPM(b)
		if err == nil && img.Bounds().Dx()*img.Bounds().Dy()*3 > len(b) {
			t.Fatalf("%v from %d bytes", img.Bounds(), len(b))
		}
	})
}
