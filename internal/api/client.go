package api

import (
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("cannot reach Vigil at %s: nothing listens there; is 'vigil up' running?", c.base)
		}
		return fmt.Errorf("cannot reach Vigil at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("read response from %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if json.Unmarshal(body, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(body))
		}
		se := &StatusError{Code: resp.StatusCode, Message: eb.Error, body: body}
		return se
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("decode response from %s: %w", path, err)
	}
	return nil
}
