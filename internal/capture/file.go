package capture

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// File replays a capture file (pcap or pcapng) as a Source, for offline analysis.
// It is not safe for concurrent use.
type File struct {
	f        *os.File
	read     func() ([]byte, int64, int, error)
	linkType layers.LinkType
	stats    Stats
	skipped  uint64
}

// ErrLinkType is returned for a capture of a link type Vigil cannot decode.
var ErrLinkType = errors.New("unsupported link type")

// OpenFile opens a pcap or pcapng file.
func OpenFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	magic, err := br.Peek(4)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not a capture file: %w", path, err)
	}
	src := &File{f: f}
	if binary.LittleEndian.Uint32(magic) == 0x0a0d0d0a {
		r, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: pcapng: %w", path, err)
		}
		src.linkType = r.LinkType()
		src.read = func() ([]byte, int64, int, error) {
			data, ci, err := r.ZeroCopyReadPacketData()
			return data, ci.Timestamp.UnixNano(), ci.Length, err
		}
	} else {
		r, err := pcapgo.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: not a pcap or pcapng file: %w", path, err)
		}
		src.linkType = r.LinkType()
		src.read = func() ([]byte, int64, int, error) {
			data, ci, err := r.ZeroCopyReadPacketData()
			return data, ci.Timestamp.UnixNano(), ci.Length, err
		}
	}
	switch src.linkType {
	case layers.LinkTypeEthernet, layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6,
		layers.LinkTypeLinuxSLL, linkTypeLinuxSLL2, linkTypeRawAlt:
	default:
		f.Close()
		return nil, fmt.Errorf("%s: %w %s", path, ErrLinkType, src.linkType)
	}
	return src, nil
}

// Link types pcapgo has no name for.
const (
	linkTypeLinuxSLL2 layers.LinkType = 276
	linkTypeRawAlt    layers.LinkType = 12 // DLT_RAW on some systems
)

// Run implements Source: it delivers every frame, then returns nil at the end of the
// file. A truncated last record ends the file; a corrupt record is an error.
func (s *File) Run(ctx context.Context, h Handler) error {
	var fr Frame
	for ctx.Err() == nil {
		data, ts, length, err := s.read()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read capture: %w", err)
		}
		s.stats.Packets++
		payload, ip, ok := s.strip(data)
		if !ok {
			s.skipped++
			continue
		}
		fr = Frame{Data: payload, Timestamp: ts, Length: length, IP: ip}
		h(&fr)
	}
	return nil
}

// strip removes a cooked-capture header, leaving an Ethernet frame or an IP packet.
func (s *File) strip(data []byte) ([]byte, bool, bool) {
	switch s.linkType {
	case layers.LinkTypeEthernet:
		return data, false, true
	case layers.LinkTypeLinuxSLL: // 16-byte header, protocol at 14
		if len(data) < 16 || !isIPEtherType(binary.BigEndian.Uint16(data[14:16])) {
			return nil, false, false
		}
		return data[16:], true, true
	case linkTypeLinuxSLL2: // 20-byte header, protocol at 0
		if len(data) < 20 || !isIPEtherType(binary.BigEndian.Uint16(data[0:2])) {
			return nil, false, false
		}
		return data[20:], true, true
	}
	return data, true, true
}

func isIPEtherType(t uint16) bool { return t == 0x0800 || t == 0x86dd }

// Stats implements Source. Packets counts every record read.
func (s *File) Stats() Stats { return s.stats }

// Skipped counts records that carry no IP packet (ARP in a cooked capture, say).
func (s *File) Skipped() uint64 { return s.skipped }

// Close closes the file.
func (s *File) Close() error { return s.f.Close() }
