package capture

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestFileReplay(t *testing.T) {
	src, err := OpenFile("testdata/loopback.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var n int
	var last int64
	err = src.Run(context.Background(), func(f *Frame) {
		n++
		if f.IP || len(f.Data) < 14 || f.Length < len(f.Data) {
			t.Errorf("frame %d: ip=%v len=%d wire=%d", n, f.IP, len(f.Data), f.Length)
		}
		if f.Timestamp < last {
			t.Errorf("frame %d: timestamps go backwards", n)
		}
		last = f.Timestamp
	})
	if err != nil || n != 31 || src.Stats().Packets != 31 {
		t.Fatalf("replayed %d frames (stats %+v), err %v; want 31", n, src.Stats(), err)
	}
}

func TestFileRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile("testdata/loopback.pcap")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":      nil,
		"text":       []byte("this is not a capture file at all"),
		"bad header": append([]byte{0xd4, 0xc3, 0xb2, 0xa1}, make([]byte, 8)...),
	}
	for name, data := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if src, err := OpenFile(p); err == nil {
			src.Close()
			t.Errorf("%s: opened without error", name)
		}
	}
	// A file cut at any point replays what it holds and stops without panicking.
	for _, cut := range []int{24, 30, 40, 100, 200, len(good) - 1} {
		p := filepath.Join(dir, "cut")
		if err := os.WriteFile(p, good[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		src, err := OpenFile(p)
		if err != nil {
			continue
		}
		_ = src.Run(context.Background(), func(*Frame) {})
		src.Close()
	}
}

func FuzzFile(f *testing.F) {
	good, err := os.ReadFile("testdata/loopback.pcap")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:100])
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.pcap")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		src, err := OpenFile(p)
		if err != nil {
			return
		}
		defer src.Close()
		var frames int
		_ = src.Run(context.Background(), func(fr *Frame) { frames++ })
		if frames > len(data)/16 {
			t.Fatalf("%d frames from %d bytes", frames, len(data))
		}
	})
}
