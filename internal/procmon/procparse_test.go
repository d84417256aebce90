package procmon

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseSocketLink(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"socket:[12345]", 12345, true},
		{"socket:[4294967295]", 4294967295, true},
		{"socket:[4294967296]", 0, false},
		{"socket:[]", 0, false},
		{"socket:[12a]", 0, false},
		{"socket:[-1]", 0, false},
		{"socket:[123", 0, false},
		{"pipe:[12345]", 0, false},
		{"anon_inode:[eventpoll]", 0, false},
		{"/dev/null", 0, false},
		{"", 0, false},
	} {
		got, ok := parseSocketLink([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseSocketLink(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseNSLink(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"net:[4026531840]", 4026531840, true},
		{"net:[18446744073709551615]", 18446744073709551615, true},
		{"net:[18446744073709551616]", 0, false},
		{"mnt:[4026531840]", 0, false},
		{"net:[]", 0, false},
		{"net:4026531840", 0, false},
	} {
		got, ok := parseNSLink([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseNSLink(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseStatusUID(t *testing.T) {
	status := "Name:\tnc\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\nPid:\t4242\nPPid:\t1\n" +
		"TracerPid:\t0\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\nFDSize:\t64\n"
	for _, tc := range []struct {
		name, in string
		want     int
		ok       bool
	}{
		{"real is the first of four", status, 1000, true},
		{"at the start", "Uid:\t65534\t65534\t65534\t65534\n", 65534, true},
		{"spaces", "Name: x\nUid:   7 7 7 7\n", 7, true},
		{"Gid is not Uid", "Gid:\t5\t5\t5\t5\n", 0, false},
		{"no digits", "Uid:\t\n", 0, false},
		{"truncated number", "Uid:\t100", 0, false},
		{"garbage", "Uid:\t1x\t0\n", 0, false},
		{"beyond 32 bits", "Uid:\t4294967296\t0\t0\t0\n", 0, false},
		{"largest", "Uid:\t4294967295\t0\t0\t0\n", 4294967295, true},
		{"empty", "", 0, false},
	} {
		got, ok := parseStatusUID([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: parseStatusUID = %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseStatStartTime(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     uint64
		ok       bool
	}{
		{"plain", statLine(42, 1, "nc", 987654), 987654, true},
		{"comm with spaces and parentheses", statLine(42, 1, "a) (b c)", 55), 55, true},
		{"short", "42 (nc) S 1 2 3", 0, false},
		{"no comm", "42 nc S", 0, false},
	} {
		got, ok := parseStatStartTime([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: parseStatStartTime = %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseStatPPID(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     int32
		ok       bool
	}{
		{"plain", statLine(42, 7, "nc", 1), 7, true},
		{"comm with spaces and parentheses", statLine(42, 3, "a) (b c)", 1), 3, true},
		{"no parent", statLine(1, 0, "init", 1), 0, true},
		{"short", "42 (nc) S", 0, false},
		{"not a number", "42 (nc) S x 5", 0, false},
		{"no comm", "42 nc S 1", 0, false},
	} {
		got, ok := parseStatPPID([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: parseStatPPID = %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestLastPIDs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want []int32
	}{
		{"", 4, nil},
		{"12 ", 4, []int32{12}},
		{"12 345 6789 ", 4, []int32{6789, 345, 12}},
		{"12 345 6789", 2, []int32{6789, 345}},
		{"1 99999999999 3 ", 4, []int32{3, 1}}, // beyond int32: skipped
	} {
		out := make([]int32, tc.n)
		got := out[:lastPIDs([]byte(tc.in), out)]
		if !slices.Equal(got, tc.want) {
			t.Errorf("lastPIDs(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// statLine is /proc/PID/stat with the parent in field 4 and the start time in field 22.
func statLine(pid, ppid int, comm string, start uint64) string {
	fields := []string{strconv.Itoa(pid), "(" + comm + ")", "S", strconv.Itoa(ppid)}
	for i := 5; i < 22; i++ {
		fields = append(fields, strconv.Itoa(i))
	}
	fields = append(fields, strconv.FormatUint(start, 10), "1000", "200")
	return strings.Join(fields, " ") + "\n"
}

func FuzzParseProc(f *testing.F) {
	f.Add([]byte("Uid:\t0\t0\t0\t0\n"))
	f.Add([]byte(statLine(1, 0, "a) b", 9)))
	f.Add([]byte("socket:[1]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseStatusUID(b)
		parseStatStartTime(b)
		parseStatPPID(b)
		lastPIDs(b, make([]int32, 4))
		parseSocketLink(b)
		parseNSLink(b)
		for off := 0; off < len(b); {
			_, _, next := dirent(b, off)
			if next <= off {
				t.Fatalf("dirent did not advance at %d", off)
			}
			off = next
		}
	})
}
