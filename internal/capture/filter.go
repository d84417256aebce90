package capture

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/bpf"
)

// MaxDropSenders bounds the senders a ring's filter drops (5 instructions each, within the
// kernel's 4,096 for a classic BPF program). Frames of senders past the bound reach user
// space, which drops them there.
const MaxDropSenders = 800

// filterProgram is the ring's classic BPF program: frames whose source MAC is in drop, and
// not own, are dropped in the kernel; the rest are kept up to snapLen bytes.
//
// On the host side of a container's veth, a frame sent by another container of this host
// whose veth is captured too was already captured there; dropping its second copy in the
// kernel spares the copy into the ring and the wakeup, which is half the cost of
// container-to-container traffic.
func filterProgram(snapLen int, own [6]byte, drop [][6]byte) ([]bpf.RawInstruction, error) {
	var blocks []bpf.Instruction
	n := 0
	for _, m := range drop {
		if m == own || n == MaxDropSenders {
			continue
		}
		n++
		w, h := macParts(m)
		blocks = append(blocks,
			bpf.LoadAbsolute{Off: 6, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: w, SkipFalse: 3},
			bpf.LoadAbsolute{Off: 10, Size: 2},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: h, SkipFalse: 1},
			bpf.RetConstant{Val: 0},
		)
	}
	var prog []bpf.Instruction
	if n > 0 {
		// Frames the workload itself sent are kept without looking further (an
		// unconditional jump reaches past the 255 instructions a conditional one can).
		w, h := macParts(own)
		prog = append(prog,
			bpf.LoadAbsolute{Off: 6, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: w, SkipFalse: 3},
			bpf.LoadAbsolute{Off: 10, Size: 2},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: h, SkipFalse: 1},
			bpf.Jump{Skip: uint32(len(blocks))},
		)
		prog = append(prog, blocks...)
	}
	prog = append(prog, bpf.RetConstant{Val: uint32(snapLen)})
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("assemble capture filter: %w", err)
	}
	return raw, nil
}

// macParts splits a MAC into the 32-bit and 16-bit words a filter loads.
func macParts(m [6]byte) (uint32, uint32) {
	return binary.BigEndian.Uint32(m[0:4]), uint32(binary.BigEndian.Uint16(m[4:6]))
}

// SetDropSenders replaces the ring's filter so that frames sent from the given MACs are
// dropped in the kernel, except frames from own (the MAC of the ring's own workload).
// The replacement is atomic: no frame passes unfiltered in between.
func (r *Ring) SetDropSenders(own [6]byte, drop [][6]byte) error {
	prog, err := filterProgram(r.snapLen, own, drop)
	if err != nil {
		return err
	}
	r.closeMu.Lock()
	defer r.closeMu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if err := r.tp.SetBPF(prog); err != nil {
		return fmt.Errorf("set capture filter on %s: %w", r.iface, err)
	}
	return nil
}
