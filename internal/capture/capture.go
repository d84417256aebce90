package capture

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"golang.org/x/sys/unix"
)

// Frame is one captured frame. Data is valid only during the Handler call.
type Frame struct {
	Data      []byte
	Timestamp int64 // unix nanoseconds
	Ifindex   int
	// Length is the frame's length on the wire; Data may be shorter (snap length).
	Length int
	// IP says that Data starts at the IP header rather than at an Ethernet header
	// (capture files of raw or "cooked" link types).
	IP bool
}

// Handler receives frames. It is called from the source's own goroutine and must not
// block for long: the kernel drops what the ring cannot hold.
type Handler func(f *Frame)

// Stats are a source's counters.
type Stats struct {
	Packets uint64 `json:"packets"`
	// Drops are frames the kernel could not put in the ring because it was full.
	Drops uint64 `json:"drops"`
}

// Source delivers frames.
type Source interface {
	// Run delivers frames to h until ctx ends (nil is returned) or the source fails.
	Run(ctx context.Context, h Handler) error
	Stats() Stats
}

// RingConfig sizes a ring. Zero fields take the defaults.
type RingConfig struct {
	// BlockSize is the ring's unit of hand-over; a multiple of the page size, and at
	// least as large as the largest frame (TSO on a veth makes 64 KiB frames).
	BlockSize int
	NumBlocks int
	// SnapLen is how much of each frame is kept.
	SnapLen int
	// BlockTimeout is how long the kernel waits before handing over a block that is not
	// full: the latency of a quiet interface.
	BlockTimeout time.Duration
}

// DefaultRing is 2 MiB per interface, 4 KiB of headers and payload per frame.
var DefaultRing = RingConfig{BlockSize: 256 << 10, NumBlocks: 8, SnapLen: 4352, BlockTimeout: time.Millisecond}

func (c *RingConfig) setDefaults() {
	if c.BlockSize <= 0 {
		c.BlockSize = DefaultRing.BlockSize
	}
	if c.NumBlocks <= 0 {
		c.NumBlocks = DefaultRing.NumBlocks
	}
	if c.SnapLen <= 0 {
		c.SnapLen = DefaultRing.SnapLen
	}
	if c.BlockTimeout <= 0 {
		c.BlockTimeout = DefaultRing.BlockTimeout
	}
}

// pollInterval bounds how long Run takes to notice that its context ended.
const pollInterval = 100 * time.Millisecond

// Ring is an AF_PACKET TPACKET_V3 ring on one interface. Run has one caller at a time;
// Stats and Close are safe from any goroutine.
type Ring struct {
	iface   string
	snapLen int
	tp      *afpacket.TPacket
	packets atomic.Uint64
	drops   atomic.Uint64
	closeMu sync.Mutex
	closed  bool
	running sync.Mutex
}

// ErrClosed is returned by Run on a closed ring.
var ErrClosed = errors.New("capture ring closed")

// OpenRing opens a ring on the named interface of the caller's network namespace.
func OpenRing(iface string, cfg RingConfig) (*Ring, error) {
	cfg.setDefaults()
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(iface),
		afpacket.TPacketVersion3,
		afpacket.OptFrameSize(cfg.BlockSize), // in V3 frames pack a block; this only caps a frame
		afpacket.OptBlockSize(cfg.BlockSize),
		afpacket.OptNumBlocks(cfg.NumBlocks),
		afpacket.OptBlockTimeout(cfg.BlockTimeout),
		afpacket.OptPollTimeout(pollInterval),
	)
	if err != nil {
		return nil, fmt.Errorf("open AF_PACKET ring on %s: %w", iface, err)
	}
	snap, err := filterProgram(cfg.SnapLen, [6]byte{}, nil)
	if err == nil {
		err = tp.SetBPF(snap)
	}
	if err != nil {
		tp.Close()
		return nil, fmt.Errorf("set snap length on %s: %w", iface, err)
	}
	return &Ring{iface: iface, tp: tp, snapLen: cfg.SnapLen}, nil
}

// Interface names the ring's interface.
func (r *Ring) Interface() string { return r.iface }

// Run implements Source.
func (r *Ring) Run(ctx context.Context, h Handler) error {
	r.running.Lock()
	defer r.running.Unlock()
	var f Frame
	for {
		if ctx.Err() != nil {
			return nil
		}
		r.closeMu.Lock()
		closed := r.closed
		r.closeMu.Unlock()
		if closed {
			return ErrClosed
		}
		data, ci, err := r.tp.ZeroCopyReadPacketData()
		switch {
		case err == nil:
		case errors.Is(err, afpacket.ErrTimeout), errors.Is(err, unix.EINTR):
			r.refreshDrops()
			continue
		case errors.Is(err, afpacket.ErrPoll):
			// The interface went away (its workload stopped) or the ring broke.
			return fmt.Errorf("capture on %s: %w", r.iface, err)
		default:
			return fmt.Errorf("capture on %s: %w", r.iface, err)
		}
		r.packets.Add(1)
		f.Data = data
		f.Timestamp = ci.Timestamp.UnixNano()
		f.Ifindex = ci.InterfaceIndex
		f.Length = ci.Length
		h(&f)
	}
}

// refreshDrops reads the kernel's counters (which reset on each read; afpacket adds them
// up). Safe from any goroutine while the ring is open.
func (r *Ring) refreshDrops() {
	_, v3, err := r.tp.SocketStats()
	if err == nil {
		r.drops.Store(uint64(v3.Drops()))
	}
}

// Stats implements Source. It asks the kernel for the drop count, so it is current even
// on a ring that is never idle.
func (r *Ring) Stats() Stats {
	r.closeMu.Lock()
	if !r.closed {
		r.refreshDrops()
	}
	r.closeMu.Unlock()
	return Stats{Packets: r.packets.Load(), Drops: r.drops.Load()}
}

// Close releases the ring. It waits for a running Run to notice (at most pollInterval).
func (r *Ring) Close() error {
	r.closeMu.Lock()
	if r.closed {
		r.closeMu.Unlock()
		return nil
	}
	r.closed = true
	r.closeMu.Unlock()
	r.running.Lock() // Run holds it until it returns
	defer r.running.Unlock()
	r.refreshDrops()
	r.tp.Close()
	return nil
}
