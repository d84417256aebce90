package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/vigil-sec/vigil/internal/controller"
)

// Vulnerabilities lists the vulnerabilities of the running workloads, the host and
// scanned images; q holds the filters (workload, image, host, severity).
func (c *Client) Vulnerabilities(ctx context.Context, q url.Values) ([]controller.VulnTarget, error) {
	var out []controller.VulnTarget
	return out, c.get(ctx, "/api/v1/vulnerabilities"+query(q), &out)
}

// RescanVulnerabilities asks the server to scan the host and every image again; the
// scans run in the background.
func (c *Client) RescanVulnerabilities(ctx context.Context) (RescanAnswer, error) {
	var out RescanAnswer
	return out, c.do(ctx, http.MethodPost, "/api/v1/vulnerabilities/scan", nil, &out)
}
