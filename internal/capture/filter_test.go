package capture

import (
	"testing"

	"golang.org/x/net/bpf"
)

func frameFrom(src [6]byte) []byte {
	f := make([]byte, 60)
	copy(f[0:6], []byte{0x02, 0x42, 0xac, 0x11, 0x00, 0x63}) // destination: anyone
	copy(f[6:12], src[:])
	f[12], f[13] = 0x08, 0x00
	return f
}

func TestFilterProgram(t *testing.T) {
	own := [6]byte{0x02, 0x42, 0xac, 0x11, 0x00, 0x02}
	other := [6]byte{0x02, 0x42, 0xac, 0x11, 0x00, 0x03}
	sameWord := [6]byte{0x02, 0x42, 0xac, 0x11, 0x01, 0x03} // shares the first four bytes
	router := [6]byte{0x02, 0x42, 0x5e, 0x11, 0x22, 0x33}

	many := make([][6]byte, 0, MaxDropSenders+10)
	for i := range MaxDropSenders + 10 {
		many = append(many, [6]byte{0x02, 0x42, 0x0a, 0x00, byte(i >> 8), byte(i)})
	}
	last := many[MaxDropSenders-1]
	pastBound := many[MaxDropSenders+5]

	cases := []struct {
		name string
		drop [][6]byte
		src  [6]byte
		want int
	}{
		{"no senders: everything kept", nil, other, 4352},
		{"another captured workload's frame is dropped", [][6]byte{other}, other, 0},
		{"a MAC sharing its first word is kept", [][6]byte{other}, sameWord, 4352},
		{"the host's router is kept", [][6]byte{other}, router, 4352},
		{"own frames kept even when listed", [][6]byte{own, other}, own, 4352},
		{"many senders: the last within the bound is dropped", many, last, 0},
		{"many senders: own frames kept (long jump)", many, own, 4352},
		{"many senders: past the bound reaches user space", many, pastBound, 4352},
	}
	for _, c := range cases {
		raw, err := filterProgram(4352, own, c.drop)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(raw) > 4096 {
			t.Fatalf("%s: %d instructions, more than the kernel takes", c.name, len(raw))
		}
		insns, ok := bpf.Disassemble(raw)
		if !ok {
			t.Fatalf("%s: program does not disassemble", c.name)
		}
		vm, err := bpf.NewVM(insns)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := vm.Run(frameFrom(c.src))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: kept %d bytes, want %d", c.name, got, c.want)
		}
	}
}
