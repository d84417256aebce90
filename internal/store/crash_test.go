package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/policy"
)

// The crash test runs this test binary again as a child that writes to the database
// in a loop until it is killed.
const (
	crashDirEnv   = "VIGIL_STORE_CRASH_DIR"
	crashRoundEnv = "VIGIL_STORE_CRASH_ROUND"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		if err := crashChild(dir, os.Getenv(crashRoundEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild writes until killed, and reports on stdout, one line each, what it has
// committed: "rule ID" for each rule of a batch, "event ID", "updated ID COUNT" for an
// event whose count it raised, and "deleted ID" for a rule it put then deleted.
// Each line is written once its transaction has returned, never before.
func crashChild(path, round string) error {
	dir, err := OpenDir(path)
	if err != nil {
		return err
	}
	db, err := Open(dir)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 1))
	report := func(format string, args ...any) { fmt.Fprintf(os.Stdout, format+"\n", args...) }
	var last Event
	for i := 0; ; i++ {
		batch := make([]policy.Rule, 1+rng.IntN(30))
		for j := range batch {
			batch[j] = crashRule(fmt.Sprintf("k%s-%d-%d", round, i, j), i+j)
		}
		if err := db.PutRules(batch); err != nil {
			return err
		}
		for _, r := range batch {
			report("rule %s", r.ID)
		}

		ev, err := db.AppendEvent(Event{Type: "violation", Severity: "warning", Summary: strings.Repeat("s", rng.IntN(2000)),
			Detail: json.RawMessage(`{"count":1}`)})
		if err != nil {
			return err
		}
		report("event %d", ev.ID)

		if last.ID != 0 { // aggregate: the previous event happened again
			var d struct{ Count int }
			if err := json.Unmarshal(last.Detail, &d); err != nil {
				return err
			}
			last.Detail = json.RawMessage(fmt.Sprintf(`{"count":%d}`, d.Count+1))
			if err := db.UpdateEvent(last); err != nil {
				return err
			}
			report("updated %d %d", last.ID, d.Count+1)
		}
		if rng.IntN(3) == 0 {
			last = ev
		}

		if i%4 == 0 { // churn: pages freed and reused
			tmp := crashRule(fmt.Sprintf("t%s-%d", round, i), i)
			if err := db.PutRules([]policy.Rule{tmp}); err != nil {
				return err
			}
			if err := db.DeleteRules([]string{tmp.ID}); err != nil {
				return err
			}
			report("deleted %s", tmp.ID)
		}
	}
}

func crashRule(id string, port int) policy.Rule {
	return policy.Rule{ID: id, From: "vigil.web", To: "vigil.db", Ports: []policy.PortRange{policy.Port(policy.ProtoTCP, uint16(1+port%65000))},
		Apps: []string{"postgresql"}, Action: policy.ActionAllow, Origin: policy.OriginLearned, Created: time.Now().UTC()}
}

// crashReport is what the children said they committed, over every round.
type crashReport struct {
	rules   map[string]bool
	deleted map[string]bool
	events  map[uint64]bool
	counts  map[uint64]int
	maxID   uint64
}

func (r *crashReport) read(line string) error {
	kind, arg, _ := strings.Cut(line, " ")
	switch kind {
	case "rule":
		r.rules[arg] = true
	case "deleted":
		r.deleted[arg] = true
	case "event":
		id, err := strconv.ParseUint(arg, 10, 64)
		if err != nil {
			return err
		}
		r.events[id], r.maxID = true, max(r.maxID, id)
	case "updated":
		var id uint64
		var n int
		if _, err := fmt.Sscan(arg, &id, &n); err != nil {
			return err
		}
		r.counts[id] = n
	default:
		return fmt.Errorf("unknown report %q", line)
	}
	return nil
}

// TestCrash kills a writer with SIGKILL at random points, several times over the same
// data dir, and checks after each kill that the database opens cleanly (every page
// checked) and holds everything the writer reported committed.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs child processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir()
	rep := crashReport{rules: map[string]bool{}, deleted: map[string]bool{}, events: map[uint64]bool{}, counts: map[uint64]int{}}
	rng := rand.New(rand.NewPCG(7, 7))
	const rounds = 20
	for round := range rounds {
		lines := crashRound(t, exe, path, round, 20+rng.IntN(600), &rep)

		db := openDB(t, path)
		p, err := db.LoadPolicy()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		stored := map[string]bool{}
		unreported := 0 // rules and events committed, but killed before it said so
		for _, r := range p.Rules {
			stored[r.ID] = true
			if !rep.rules[r.ID] {
				unreported++
			}
		}
		for id := range rep.rules {
			if !stored[id] {
				t.Errorf("round %d: rule %s was reported committed and is missing", round, id)
			}
		}
		for id := range rep.deleted {
			if stored[id] {
				t.Errorf("round %d: rule %s was reported deleted and is present", round, id)
			}
		}
		evs, err := db.Events("", 0, 0)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		byID := map[uint64]Event{}
		for _, ev := range evs {
			byID[ev.ID] = ev
			if !rep.events[ev.ID] && ev.Type != "restart" {
				unreported++
			}
		}
		for id := range rep.events {
			if _, ok := byID[id]; !ok {
				t.Errorf("round %d: event %d was reported committed and is missing", round, id)
			}
		}
		for id, n := range rep.counts {
			var d struct{ Count int }
			if err := json.Unmarshal(byID[id].Detail, &d); err != nil || d.Count < n {
				t.Errorf("round %d: event %d has count %d (%v), reported updated to %d", round, id, d.Count, err, n)
			}
		}
		// An event appended after the crash takes an id no child reported.
		ev, err := db.AppendEvent(Event{Type: "restart"})
		if err != nil {
			t.Fatal(err)
		}
		if ev.ID <= rep.maxID {
			t.Errorf("round %d: id %d after a crash, but the child reported %d", round, ev.ID, rep.maxID)
		}
		closeAll(t, db)
		t.Logf("round %d: killed after %d reports; %d rules, %d events stored, %d of them unreported",
			round, lines, len(p.Rules), len(evs), unreported)
	}
}

// crashRound runs a child on path, kills it once it has reported at least killAfter
// commits, and reads what it reported up to its death. It returns how many lines it read.
func crashRound(t *testing.T, exe, path string, round, killAfter int, rep *crashReport) int {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+path, crashRoundEnv+"="+strconv.Itoa(round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Lines written before the kill wait in the pipe, and are read after it.
	sc := bufio.NewScanner(out)
	n := 0
	for sc.Scan() {
		if err := rep.read(sc.Text()); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n++; n == killAfter {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: the child ended with %v before it was killed; stderr:\n%s", round, err, stderr.String())
	}
	return n
}
