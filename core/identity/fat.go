package identity

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
)

// A 1.44 MB floppy's FAT12 geometry, what DOS's FORMAT A: writes: every
// BIOS, DOS, Windows and Linux reads it without being told anything.
const (
	sectorSize   = 512
	totalSectors = 2880
	fatSectors   = 9
	rootEntries  = 224
	rootSectors  = rootEntries * 32 / sectorSize
	firstData    = 1 + 2*fatSectors + rootSectors // sector of cluster 2
	// FloppySize is the image's size in bytes.
	FloppySize = totalSectors * sectorSize
)

// Floppy makes a FAT12 1.44 MB floppy image with files in its root
// directory, byte for byte the same for the same files: no clock, and a
// volume serial from their content. Names are 8.3 in upper case.
func Floppy(label string, files []File) ([]byte, error) {
	img := make([]byte, FloppySize)
	sum := sha256.New()
	for _, f := range files {
		sum.Write([]byte(f.Name))
		sum.Write(f.Data)
	}
	serial := sum.Sum(nil)

	b := img[:sectorSize]
	copy(b, []byte{0xEB, 0x3C, 0x90})
	copy(b[3:11], "LOCO-ID ")
	binary.LittleEndian.PutUint16(b[11:], sectorSize)
	b[13] = 1 // sectors per cluster
	binary.LittleEndian.PutUint16(b[14:], 1)
	b[16] = 2 // FATs
	binary.LittleEndian.PutUint16(b[17:], rootEntries)
	binary.LittleEndian.PutUint16(b[19:], totalSectors)
	b[21] = 0xF0 // media: 3.5" 1.44 MB
	binary.LittleEndian.PutUint16(b[22:], fatSectors)
	binary.LittleEndian.PutUint16(b[24:], 18) // sectors per track
	binary.LittleEndian.PutUint16(b[26:], 2)  // heads
	b[38] = 0x29                              // extended boot signature
	copy(b[39:43], serial)
	copy(b[43:54], pad(label, 11))
	copy(b[54:62], "FAT12   ")
	// Not a boot disk: INT 18h hands the BIOS on to the next boot device,
	// should it ever try this one first.
	copy(b[62:], []byte{0xCD, 0x18, 0xF4, 0xEB, 0xFD})
	b[510], b[511] = 0x55, 0xAA

	fat := make([]byte, fatSectors*sectorSize)
	setFAT(fat, 0, 0xFF0)
	setFAT(fat, 1, 0xFFF)
	root := img[(1+2*fatSectors)*sectorSize : firstData*sectorSize]
	copy(root[0:11], pad(label, 11))
	root[11] = 0x08 // volume label
	cluster := 2
	for i, f := range files {
		name, err := shortName(f.Name)
		if err != nil {
			return nil, err
		}
		if i+1 >= rootEntries {
			return nil, fmt.Errorf("more than %d files", rootEntries-1)
		}
		n := (len(f.Data) + sectorSize - 1) / sectorSize
		if firstData+cluster-2+n > totalSectors {
			return nil, fmt.Errorf("the files do not fit on a 1.44 MB floppy")
		}
		e := root[(i+1)*32 : (i+2)*32]
		copy(e[0:11], name)
		e[11] = 0x20 // archive
		// 1980-01-01 00:00, DOS's epoch: the image depends on nothing else.
		binary.LittleEndian.PutUint16(e[16:], 0x21)
		binary.LittleEndian.PutUint16(e[18:], 0x21)
		binary.LittleEndian.PutUint16(e[24:], 0x21)
		binary.LittleEndian.PutUint32(e[28:], uint32(len(f.Data)))
		if n == 0 {
			continue
		}
		binary.LittleEndian.PutUint16(e[26:], uint16(cluster))
		copy(img[(firstData+cluster-2)*sectorSize:], f.Data)
		for k := 0; k < n; k++ {
			next := cluster + k + 1
			if k == n-1 {
				next = 0xFFF
			}
			setFAT(fat, cluster+k, next)
		}
		cluster += n
	}
	copy(img[sectorSize:], fat)
	copy(img[(1+fatSectors)*sectorSize:], fat)
	return img, nil
}

// setFAT stores a 12-bit entry: two entries share three bytes.
func setFAT(fat []byte, n, v int) {
	off := n * 3 / 2
	if n%2 == 0 {
		fat[off] = byte(v)
		fat[off+1] = fat[off+1]&0xF0 | byte(v>>8)&0x0F
	} else {
		fat[off] = fat[off]&0x0F | byte(v<<4)
		fat[off+1] = byte(v >> 4)
	}
}

func pad(s string, n int) []byte {
	b := []byte(strings.Repeat(" ", n))
	copy(b, strings.ToUpper(s))
	return b
}

// shortName is an 8.3 name in a directory entry's form ("IDENT   REG").
func shortName(s string) ([]byte, error) {
	base, ext, _ := strings.Cut(s, ".")
	if base == "" || len(base) > 8 || len(ext) > 3 || strings.Contains(ext, ".") || s != strings.ToUpper(s) {
		return nil, fmt.Errorf("file name %q is not an upper-case 8.3 name", s)
	}
	for _, r := range base + ext {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return nil, fmt.Errorf("file name %q: only A-Z, 0-9, '_' and '-'", s)
		}
	}
	return append(pad(base, 8), pad(ext, 3)...), nil
}
