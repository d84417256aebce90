package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-sec/vigil/internal/controller"
	"github.com/vigil-sec/vigil/internal/flow"
	"github.com/vigil-sec/vigil/internal/policy"
	"github.com/vigil-sec/vigil/internal/workload"
)

// DefaultServer is where `vigil up` listens unless told otherwise.
const DefaultServer = "http://127.0.0.1:8470"

// maxResponse bounds what the client reads of one response.
const maxResponse = 64 << 20

// Client talks to a Vigil server. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// StatusError is a non-2xx answer from the server.
type StatusError struct {
	Code    int
	Message string
	body    []byte
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// NewClient returns a client for the server at base. It refuses to send the token in the
// clear to anything but a loopback address: use https for a remote server.
func NewClient(base, token string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", base, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server address %q: want http://host:port or https://host:port", base)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("server address %q: refusing to send the API token unencrypted to a non-loopback host; use https", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u, token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Health asks the server how it is; it needs no token.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.get(ctx, "/api/v1/health", &h)
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusServiceUnavailable {
		// A degraded Vigil answers 503 with its health; a proxy's 503 is an error.
		if json.Unmarshal(se.body, &h) == nil && h.Status != "" {
			return h, nil
		}
	}
	return h, err
}

// Workloads lists the workloads on the server's host.
func (c *Client) Workloads(ctx context.Context) ([]workload.Workload, error) {
	var out []workload.Workload
	return out, c.get(ctx, "/api/v1/workloads", &out)
}

// Workload describes one workload by ID, ID prefix or name.
func (c *Client) Workload(ctx context.Context, ref string) (workload.Workload, error) {
	var out workload.Workload
	return out, c.get(ctx, "/api/v1/workloads/"+url.PathEscape(ref), &out)
}

// Groups lists the groups and their members.
func (c *Client) Groups(ctx context.Context) ([]workload.Group, error) {
	var out []workload.Group
	return out, c.get(ctx, "/api/v1/groups", &out)
}

// get fetches path, which must already be escaped, below the server's base URL.
func (c *Client) get(ctx context.Context, path string, into any) error {
	return c.do(ctx, http.MethodGet, path, nil, into)
}

// do sends a request with an optional JSON body and decodes the JSON answer into into
// (when not nil and the answer has a body).
func (c *Client) do(ctx context.Context, method, path string, body, into any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("cannot reach Vigil at %s: nothing listens there; is 'vigil up' running?", c.base)
		}
		return fmt.Errorf("cannot reach Vigil at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("read response from %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(data))
		}
		return &StatusError{Code: resp.StatusCode, Message: eb.Error, body: data}
	}
	if into == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, into); err != nil {
		return fmt.Errorf("decode response from %s: %w", path, err)
	}
	return nil
}

// Policy fetches the whole policy.
func (c *Client) Policy(ctx context.Context) (controller.PolicyView, error) {
	var out controller.PolicyView
	return out, c.get(ctx, "/api/v1/policy", &out)
}

// PutGroup creates or replaces a custom group.
func (c *Client) PutGroup(ctx context.Context, name string, req GroupRequest) error {
	return c.do(ctx, http.MethodPut, "/api/v1/policy/groups/"+url.PathEscape(name), req, nil)
}

// ApplyPolicy replaces the whole policy.
func (c *Client) ApplyPolicy(ctx context.Context, p controller.PolicyView) error {
	return c.do(ctx, http.MethodPut, "/api/v1/policy", p, nil)
}

// SetMode sets a group's mode.
func (c *Client) SetMode(ctx context.Context, group, mode string) error {
	return c.do(ctx, http.MethodPut, "/api/v1/groups/"+url.PathEscape(group)+"/mode", ModeRequest{Mode: mode}, nil)
}

// SetDefaultMode sets the mode of groups the policy does not list.
func (c *Client) SetDefaultMode(ctx context.Context, mode string) error {
	return c.do(ctx, http.MethodPut, "/api/v1/policy/default-mode", ModeRequest{Mode: mode}, nil)
}

// AddRule adds a user rule.
func (c *Client) AddRule(ctx context.Context, r RuleRequest) (policy.Rule, error) {
	var out policy.Rule
	return out, c.do(ctx, http.MethodPost, "/api/v1/rules", r, &out)
}

// DeleteRule removes a rule.
func (c *Client) DeleteRule(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/rules/"+url.PathEscape(id), nil, nil)
}

// PromoteRule turns a learned rule into a user rule.
func (c *Client) PromoteRule(ctx context.Context, id string) (policy.Rule, error) {
	var out policy.Rule
	return out, c.do(ctx, http.MethodPost, "/api/v1/rules/"+url.PathEscape(id)+"/promote", nil, &out)
}

// SimulationResult is the answer of a policy simulation.
type SimulationResult struct {
	Mode          string                 `json:"mode"`
	FlowsReplayed int                    `json:"flows_replayed"`
	NotAllowed    []controller.SimResult `json:"not_allowed"`
}

// Simulate replays recorded flows against the policy with some groups switched.
func (c *Client) Simulate(ctx context.Context, req SimulateRequest) (SimulationResult, error) {
	var out SimulationResult
	return out, c.do(ctx, http.MethodPost, "/api/v1/policy/simulate", req, &out)
}

// Events lists recent events, newest first.
func (c *Client) Events(ctx context.Context, q url.Values) ([]controller.Event, error) {
	var out []controller.Event
	return out, c.get(ctx, "/api/v1/events"+query(q), &out)
}

// Flows lists recent flows; q holds the filters (workload, group, app, proto, since,
// limit).
func (c *Client) Flows(ctx context.Context, q url.Values) ([]flow.Record, error) {
	var out []flow.Record
	return out, c.get(ctx, "/api/v1/flows"+query(q), &out)
}

// Graph fetches the connection graph.
func (c *Client) Graph(ctx context.Context) (controller.Graph, error) {
	var out controller.Graph
	return out, c.get(ctx, "/api/v1/graph", &out)
}

// Capture fetches the data path's counters.
func (c *Client) Capture(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.get(ctx, "/api/v1/capture", &out)
}

func query(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// maxEventSize bounds one server-sent event.
const maxEventSize = 1 << 20

// StreamFlows follows the flow stream, calling fn for each event, until ctx ends, fn
// returns an error, or the server ends the stream.
func (c *Client) StreamFlows(ctx context.Context, q url.Values, fn func(flow.Event) error) error {
	return follow(ctx, c, "/api/v1/flows/stream"+query(q), "flow", fn)
}

// StreamEvents follows the event stream (new events, and aggregated ones again as their
// count grows) until ctx ends, fn returns an error, or the server ends the stream.
func (c *Client) StreamEvents(ctx context.Context, q url.Values, fn func(controller.Event) error) error {
	return follow(ctx, c, "/api/v1/events/stream"+query(q), "event", fn)
}

// follow reads a server-sent event stream, decoding the events named name into T.
func follow[T any](ctx context.Context, c *Client, path, name string, fn func(T) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	// No overall timeout: the stream lasts as long as the caller wants.
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cannot reach Vigil at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var eb ErrorBody
		if json.Unmarshal(body, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(body))
		}
		return &StatusError{Code: resp.StatusCode, Message: eb.Error}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxEventSize)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			switch event {
			case name:
				var v T
				if err := json.Unmarshal([]byte(data), &v); err != nil {
					return fmt.Errorf("decode %s event: %w", name, err)
				}
				if err := fn(v); err != nil {
					return err
				}
			case "error":
				var eb ErrorBody
				_ = json.Unmarshal([]byte(data), &eb)
				return fmt.Errorf("server ended the stream: %s", eb.Error)
			}
			event, data = "", ""
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:"):
			data += strings.TrimPrefix(line[len("data:"):], " ")
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s stream: %w", name, err)
	}
	return fmt.Errorf("server closed the %s stream", name)
}
