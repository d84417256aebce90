package procmon

import (
	"bytes"
	"math"
)

// Parsers of what /proc says.

// parseSocketLink parses the target of a /proc/PID/fd link to a socket: "socket:[INODE]".
func parseSocketLink(b []byte) (uint32, bool) {
	v, ok := parseBracketed(b, "socket:[")
	if !ok || v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

// parseNSLink parses the target of /proc/PID/ns/net: "net:[INODE]".
func parseNSLink(b []byte) (uint64, bool) {
	return parseBracketed(b, "net:[")
}

func parseBracketed(b []byte, prefix string) (uint64, bool) {
	if len(b) < len(prefix)+2 || string(b[:len(prefix)]) != prefix || b[len(b)-1] != ']' {
		return 0, false
	}
	return parseUint(b[len(prefix) : len(b)-1])
}

// parseStatusUID returns the real user ID: the first number of the Uid line of
// /proc/PID/status ("Uid:\treal\teffective\tsaved\tfilesystem").
func parseStatusUID(b []byte) (int, bool) {
	var line []byte
	if bytes.HasPrefix(b, []byte("Uid:")) {
		line = b[len("Uid:"):]
	} else if i := bytes.Index(b, []byte("\nUid:")); i >= 0 {
		line = b[i+len("\nUid:"):]
	} else {
		return 0, false
	}
	line = bytes.TrimLeft(line, " \t")
	end := 0
	for end < len(line) && line[end] >= '0' && line[end] <= '9' {
		end++
	}
	if end == len(line) || (line[end] != '\t' && line[end] != ' ' && line[end] != '\n') {
		return 0, false
	}
	v, ok := parseUint(line[:end])
	if !ok || v > math.MaxUint32 {
		return 0, false
	}
	return int(v), true
}

// parseStatStartTime returns field 22 of /proc/PID/stat, the start time in clock ticks
// after boot.
func parseStatStartTime(b []byte) (uint64, bool) {
	f, ok := statField(b, 22)
	if !ok {
		return 0, false
	}
	return parseUint(f)
}

// parseStatPPID returns field 4 of /proc/PID/stat, the parent's PID.
func parseStatPPID(b []byte) (int32, bool) {
	f, ok := statField(b, 4)
	if !ok {
		return 0, false
	}
	return parsePID(f)
}

// statField returns field n (from 1, at least 3) of /proc/PID/stat. The command name
// (field 2) may hold spaces and parentheses, so fields are counted from the last ')'.
func statField(b []byte, n int) ([]byte, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, false
	}
	b = b[i+1:]
	for field := 2; ; field++ {
		b = bytes.TrimLeft(b, " \n")
		if len(b) == 0 {
			return nil, false
		}
		end := bytes.IndexAny(b, " \n")
		if end < 0 {
			end = len(b)
		}
		if field+1 == n {
			return b[:end], true
		}
		b = b[end:]
	}
}

// parsePID parses a /proc or /proc/PID/fd entry name; other names are not numbers.
func parsePID(b []byte) (int32, bool) {
	v, ok := parseUint(b)
	if !ok || v > math.MaxInt32 {
		return 0, false
	}
	return int32(v), true
}

func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}
