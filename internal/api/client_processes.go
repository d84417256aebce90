package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/vigil-sec/vigil/internal/controller"
)

// Processes returns the live process tree, of one workload when ref is not empty.
func (c *Client) Processes(ctx context.Context, ref string) ([]controller.ProcessView, error) {
	q := url.Values{}
	if ref != "" {
		q.Set("workload", ref)
	}
	var out []controller.ProcessView
	return out, c.get(ctx, "/api/v1/processes"+query(q), &out)
}

// Profile returns a group's process profile.
func (c *Client) Profile(ctx context.Context, group string) (controller.ProfileView, error) {
	var out controller.ProfileView
	return out, c.get(ctx, "/api/v1/profiles/"+url.PathEscape(group), &out)
}

// Profiles returns every group's process profile.
func (c *Client) Profiles(ctx context.Context) ([]controller.ProfileView, error) {
	var out []controller.ProfileView
	return out, c.get(ctx, "/api/v1/profiles", &out)
}

// ProcessStats returns the process monitor's and engine's counters.
func (c *Client) ProcessStats(ctx context.Context) (controller.ProcessStats, error) {
	var out controller.ProcessStats
	return out, c.get(ctx, "/api/v1/processes/stats", &out)
}

// ReplaceProfiles replaces the process profiles of the groups it names.
func (c *Client) ReplaceProfiles(ctx context.Context, req ProfilesRequest) error {
	return c.do(ctx, http.MethodPut, "/api/v1/profiles", req, nil)
}
