//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-sec/vigil/internal/api"
	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/flow"
	"github.com/vigil-sec/vigil/internal/workload"
	"github.com/vigil-sec/vigil/test/testenv"
)

// browser is a headless Chromium driven through the DevTools protocol, with what its
// pages wrote to the console.
type browser struct {
	ctx     context.Context
	mu      sync.Mutex
	console []string
}

// newBrowser starts Debian's chromium, headless. It runs as root in the tests, hence
// --no-sandbox. It is stopped when the test ends.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("the browser tests need Debian's chromium (apt-get install chromium, or make setup): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.WindowSize(1440, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{ctx: ctx}
	// Open the tab first, so that the console subscription sees everything after it.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, fmt.Sprintf("%s [%s] %s", m.String(), m.Source, m.URL))
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		<-done
		if t.Failed() {
			t.Logf("browser console:\n%s", strings.Join(b.lines(), "\n"))
		}
	})
	return b
}

func (b *browser) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

func (b *browser) run(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval runs a script in the page and returns its value as JSON.
func (b *browser) eval(t *testing.T, js string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[any](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	data, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// waitJS polls a script until check accepts its JSON value.
func (b *browser) waitJS(t *testing.T, timeout time.Duration, what, js string, check func(string) bool) string {
	t.Helper()
	var last string
	eventually(t, timeout, what, func() (bool, string) {
		last = b.eval(t, js)
		return check(last), last
	})
	return last
}

// checkConsole fails the test for any Content-Security-Policy violation or uncaught
// exception the pages reported.
func (b *browser) checkConsole(t *testing.T) {
	t.Helper()
	for _, l := range b.lines() {
		if strings.Contains(l, "Content Security Policy") || strings.HasPrefix(l, string(chromedp.ConsoleException)) {
			t.Errorf("browser reported: %s", l)
		}
	}
}

func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("VIGIL_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "browser", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactsDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// requireBuiltConsole fails when the binary under test embeds the placeholder rather
// than the console (the front end must be built before the Go binary).
func requireBuiltConsole(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "/assets/app-") {
		t.Fatalf("the vigil binary under test has no web console (GET / = %d): build the front end first "+
			"(make build, or npm ci && npm run build in web/) and run the tests again", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("GET / without a strict Content-Security-Policy: %q", csp)
	}
}

// The map's cytoscape instance, reached through its container (cytoscape registers
// itself there), so the page carries no hook of its own for tests.
const cyJS = `document.getElementById('map')?._cyreg?.cy`

// TestConsoleInBrowser signs in with the address `vigil console --print-url` prints, sees
// the real containers on the map, switches a group to Monitor on the policy page, makes
// a container break the learned policy and sees the red edge and the event arrive live.
func TestConsoleInBrowser(t *testing.T) {
	d := testenv.NewDocker(t)
	d.EnsureImage(t)
	net := d.Network(t, "")
	v := startVigil(t)
	requireBuiltConsole(t, v.URL)

	db, web, dbIP := webAndDB(t, d, v, net)
	// Discover: web -> db is learned.
	request(t, d, web, dbIP)
	eventually(t, flowDeadline, "the learned rule web -> db", func() (bool, string) {
		p, err := v.Client.Policy(context.Background())
		if err != nil {
			return false, err.Error()
		}
		for _, r := range p.Rules {
			if r.From == "vigil.web" && r.To == "vigil.db" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", p.Rules)
	})

	out, err := execVigil("console", "--print-url", "--server", v.URL, "--token-file", v.TokenFile)
	if err != nil {
		t.Fatalf("vigil console --print-url: %v\n%s", err, out)
	}
	loginURL := strings.TrimSpace(out)
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(loginURL, v.URL+"/#/login/") {
		t.Fatalf("vigil console --print-url printed %q, want one line with the sign-in address", out)
	}
	if tok := readToken(t, v); strings.Contains(loginURL, tok) {
		t.Fatal("the sign-in address carries the API token")
	}

	b := newBrowser(t)
	start := time.Now()
	b.run(t, "open the sign-in address", chromedp.Navigate(loginURL))
	nodes := b.waitJS(t, 20*time.Second, "the map with the running containers' groups",
		`(() => { const cy = `+cyJS+`; return cy ? cy.nodes().map(n => n.id()) : []; })()`,
		func(s string) bool {
			return strings.Contains(s, `"group:vigil.db"`) && strings.Contains(s, `"group:vigil.web"`)
		})
	t.Logf("map with the real containers after %v: %s", time.Since(start).Round(time.Millisecond), nodes)
	b.waitJS(t, 20*time.Second, "the learned edge web -> db",
		`(() => { const cy = `+cyJS+`; return cy.edges().map(e => [e.source().id(), e.target().id(), e.data('verdict')]); })()`,
		func(s string) bool { return strings.Contains(s, `["group:vigil.web","group:vigil.db","allowed"]`) })
	// The code left the address bar, and the session cookie is out of the scripts' reach.
	if got := b.eval(t, `[location.hash, document.cookie]`); strings.Contains(got, "login") || strings.Contains(got, "vigil_session") {
		t.Errorf("after sign-in, [hash, document.cookie] = %s", got)
	}
	// The code was good once.
	resp, err := http.Post(v.URL+"/api/v1/console/session", "application/json",
		strings.NewReader(`{"code":"`+strings.TrimPrefix(loginURL, v.URL+"/#/login/")+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the used login code answered %d, want 401", resp.StatusCode)
	}

	// The policy page: one click puts db in Monitor.
	b.run(t, "open the policy page", chromedp.Click(chromedp.CSS(`a[data-route="policy"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.modes[data-group="vigil.db"] button[data-mode="monitor"]`)))
	b.run(t, "switch db to monitor", chromedp.Click(chromedp.CSS(`.modes[data-group="vigil.db"] button[data-mode="monitor"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.modes[data-group="vigil.db"] button[data-mode="monitor"].current`)))
	eventually(t, 5*time.Second, "db in monitor mode", func() (bool, string) {
		p, err := v.Client.Policy(context.Background())
		if err != nil {
			return false, err.Error()
		}
		for _, g := range p.Groups {
			if g.Name == "vigil.db" {
				return g.Mode.String() == "monitor", g.Mode.String()
			}
		}
		return false, fmt.Sprintf("%+v", p.Groups)
	})

	// Back on the map, a container of a new group makes a connection no rule allows.
	b.run(t, "open the map", chromedp.Click(chromedp.CSS(`a[data-route="map"]`)))
	b.waitJS(t, 20*time.Second, "the map again", `(() => { const cy = `+cyJS+`; return cy ? cy.edges().length : 0; })()`,
		func(s string) bool { return s != "0" })
	b.eval(t, `window.vigilTestNoReload = 'still here'`)
	intruder := d.Run(t, testenv.ContainerSpec{NetworkMode: net, Labels: map[string]string{"vigil.group": "intruder"}})
	waitCaptured(t, v, db, web, intruder)
	request(t, d, intruder, dbIP)
	red := b.waitJS(t, 2*flowDeadline, "the red edge intruder -> db, live",
		`(() => { const cy = `+cyJS+`; return cy.edges('[verdict = "violation"]').map(e => [e.source().id(), e.target().id(), e.style('line-color')]); })()`,
		func(s string) bool {
			return strings.Contains(s, `["group:vigil.intruder","group:vigil.db","rgb(229,57,53)"]`)
		})
	t.Logf("violating edges: %s", red)
	if got := b.eval(t, `window.vigilTestNoReload`); got != `"still here"` {
		t.Errorf("the page was reloaded (marker = %s)", got)
	}
	// Details: the violating connection's recent flows with their processes, and the
	// db group's members and rules.
	b.eval(t, `(() => { const cy = `+cyJS+`; cy.edges('[verdict = "violation"]').first().emit('tap'); return 1; })()`)
	b.waitJS(t, 10*time.Second, "the details of the red edge", `document.querySelector('.details')?.textContent ?? ''`,
		func(s string) bool {
			return strings.Contains(s, "violation") && strings.Contains(s, "Recent flows") && strings.Contains(s, "nc[")
		})
	b.eval(t, `(() => { const cy = `+cyJS+`; cy.getElementById('group:vigil.db').emit('tap'); return 1; })()`)
	b.waitJS(t, 10*time.Second, "the details of the db group", `document.querySelector('.details')?.textContent ?? ''`,
		func(s string) bool {
			return strings.Contains(s, "Mode: monitor") && strings.Contains(s, db.Name) && strings.Contains(s, "vigil.web") && strings.Contains(s, "httpd[")
		})
	b.screenshot(t, "console-map.png")

	// The events page shows the violation, and a new one arrives without a reload.
	b.run(t, "open the events page", chromedp.Click(chromedp.CSS(`a[data-route="events"]`)))
	b.waitJS(t, 10*time.Second, "the violation on the events page",
		`[...document.querySelectorAll('details.event[data-type="violation"] .summary')].map(e => e.textContent)`,
		func(s string) bool { return strings.Contains(s, "vigil.intruder") })
	other := d.Run(t, testenv.ContainerSpec{NetworkMode: net, Labels: map[string]string{"vigil.group": "stranger"}})
	waitCaptured(t, v, db, other)
	request(t, d, other, dbIP)
	b.waitJS(t, 2*flowDeadline, "the second violation on the events page, live",
		`[...document.querySelectorAll('details.event[data-type="violation"] .summary')].map(e => e.textContent)`,
		func(s string) bool { return strings.Contains(s, "vigil.stranger") })
	if got := b.eval(t, `window.vigilTestNoReload`); got != `"still here"` {
		t.Errorf("the page was reloaded (marker = %s)", got)
	}
	b.screenshot(t, "console-events.png")

	// The other pages load: compliance (the audit runs at start) and vulnerabilities.
	b.run(t, "open the compliance page", chromedp.Click(chromedp.CSS(`a[data-route="compliance"]`)))
	b.waitJS(t, 30*time.Second, "audit results or their absence",
		`document.querySelector('.compliance-page')?.textContent ?? ''`,
		func(s string) bool {
			return strings.Contains(s, "score") || strings.Contains(s, "No audit results yet")
		})
	b.run(t, "open the vulnerabilities page", chromedp.Click(chromedp.CSS(`a[data-route="vulnerabilities"]`)))
	b.waitJS(t, 10*time.Second, "scan results or their absence",
		`document.querySelector('.vulns-page')?.textContent ?? ''`,
		func(s string) bool { return s != `""` })
	b.checkConsole(t)
}

// syntheticWorkloads is a registry stand-in for the load test: n containers, each its own
// group, as services usually are.
type syntheticWorkloads struct{ list []workload.Workload }

func (s syntheticWorkloads) List() []workload.Workload { return s.list }
func (s syntheticWorkloads) Get(ref string) (workload.Workload, error) {
	for _, w := range s.list {
		if w.ID == ref || w.Name == ref {
			return w, nil
		}
	}
	return workload.Workload{}, workload.ErrNotFound
}
func (s syntheticWorkloads) Groups() []workload.Group {
	var out []workload.Group
	for _, w := range s.list {
		out = append(out, workload.Group{Name: w.Group, Members: []workload.Member{{ID: w.ID, Name: w.Name}}})
	}
	return out
}
func (s syntheticWorkloads) Status() workload.Status { return workload.Status{Connected: true} }

func syntheticEndpoint(i int, port uint16) flow.Endpoint {
	return flow.Endpoint{
		IP:       netip.AddrFrom4([4]byte{10, 77, byte(i >> 8), byte(i)}),
		Port:     port,
		Kind:     flow.KindWorkload,
		Workload: fmt.Sprintf("%064x", i+1),
		Name:     fmt.Sprintf("svc-%03d", i),
		Group:    fmt.Sprintf("vigil.svc-%03d", i),
	}
}

// TestConsoleMapLoad feeds the real server (its API, flow store and streams, in this
// process) 500 workloads and 5,000 connections between them, opens the console in
// Chromium and measures the time to the first drawn map and to draw a batch of live
// updates.
func TestConsoleMapLoad(t *testing.T) {
	const nodes, edges = 500, 5000
	var list []workload.Workload
	for i := range nodes {
		e := syntheticEndpoint(i, 0)
		list = append(list, workload.Workload{ID: e.Workload, Name: e.Name, Kind: workload.KindContainer, Image: "synthetic", Group: e.Group, State: "running"})
	}
	srv, err := api.NewServer(syntheticWorkloads{list}, "vgl_"+strings.Repeat("5a", 32), "load-test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	flows := controller.NewFlows(20000, 100000)
	srv.SetFlows(flows, func() any { return map[string]any{} })
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	requireBuiltConsole(t, hs.URL)

	now := time.Now().UTC()
	record := func(id uint64, c, s int, port uint16, bytes uint64) flow.Record {
		verdict := "learn"
		switch id % 100 {
		case 7, 8:
			verdict = "violate"
		case 9:
			verdict = "deny"
		}
		return flow.Record{ID: id, Proto: "tcp", Client: syntheticEndpoint(c, 40000), Server: syntheticEndpoint(s, port), App: "http",
			Bytes: bytes, Packets: 10, FirstSeen: now, LastSeen: now, State: flow.StateEstablished, Verdict: verdict}
	}
	var batch []flow.Event
	for i := range edges {
		c, k := i%nodes, i/nodes
		batch = append(batch, flow.Event{Type: flow.EventStart, Record: record(uint64(i+1), c, (c+1+k)%nodes, 8080, 4096)})
	}
	flows.ReportFlows(batch)

	code, err := api.NewClient(hs.URL, "vgl_"+strings.Repeat("5a", 32))
	if err != nil {
		t.Fatal(err)
	}
	lc, err := code.ConsoleLoginCode(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	b.run(t, "open the console", chromedp.Navigate(code.ConsoleURL(lc)))
	first := b.waitJS(t, 60*time.Second, "the first render of the map",
		`(() => { const m = performance.getEntriesByName('vigil:map-first-render')[0]; const cy = `+cyJS+`;
		   return m ? {ms: Math.round(m.duration), nodes: cy.nodes().length, edges: cy.edges().length} : null; })()`,
		func(s string) bool { return s != "null" })
	var fr struct{ MS, Nodes, Edges int }
	if err := json.Unmarshal([]byte(first), &fr); err != nil {
		t.Fatal(err)
	}
	if fr.Nodes < nodes || fr.Edges < edges*9/10 {
		// The stream may have added to the snapshot; fewer than given means something is lost.
		t.Errorf("first render drew %d nodes and %d edges, want %d and about %d", fr.Nodes, fr.Edges, nodes, edges)
	}
	b.waitJS(t, 30*time.Second, "all edges drawn", `(() => `+cyJS+`.edges().length)()`, func(s string) bool { return s == fmt.Sprint(edges) })

	// A batch of live updates: 1,000 flows grow and 500 new connections appear.
	var upd []flow.Event
	for i := range 1000 {
		c, k := i%nodes, i/nodes
		upd = append(upd, flow.Event{Type: flow.EventUpdate, Record: record(uint64(i+1), c, (c+1+k)%nodes, 8080, 1<<20)})
	}
	for i := range 500 {
		upd = append(upd, flow.Event{Type: flow.EventStart, Record: record(uint64(edges+i+1), i, (i+250)%nodes, 9090, 2048)})
	}
	flows.ReportFlows(upd)
	updates := b.waitJS(t, 30*time.Second, "the update batch drawn",
		`(() => { const cy = `+cyJS+`; const ms = performance.getEntriesByName('vigil:map-update');
		   const flows = ms.reduce((n, m) => n + m.detail.flows, 0);
		   return {edges: cy.edges().length, flows, batches: ms.map(m => Math.round(m.duration))}; })()`,
		func(s string) bool {
			return strings.Contains(s, fmt.Sprintf(`"edges":%d`, edges+500)) && strings.Contains(s, `"flows":1500`)
		})
	var up struct {
		Edges   int
		Flows   int
		Batches []int
	}
	if err := json.Unmarshal([]byte(updates), &up); err != nil {
		t.Fatal(err)
	}
	worst := 0
	for _, ms := range up.Batches {
		worst = max(worst, ms)
	}
	// Responsive: the page answers a script promptly after the batch.
	t0 := time.Now()
	b.eval(t, `1`)
	rtt := time.Since(t0)
	b.screenshot(t, "console-map-load.png")
	t.Logf("synthetic map of %d nodes and %d edges: first render %d ms after navigation start (drawn: %d nodes, %d edges); "+
		"update of %d flows (500 new edges) in %d batch(es), slowest %d ms; script round trip after it %v",
		nodes, edges, fr.MS, fr.Nodes, fr.Edges, up.Flows, len(up.Batches), worst, rtt.Round(time.Millisecond))
	if fr.MS > 15000 {
		t.Errorf("first render took %d ms: the map is not usable at this size", fr.MS)
	}
	if worst > 3000 {
		t.Errorf("an update batch took %d ms to draw", worst)
	}
	b.checkConsole(t)
}
