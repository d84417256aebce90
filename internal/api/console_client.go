package api

import (
	"context"
	"net/http"
)

// ConsoleLoginCode asks the server for a one-time login code of the web console (the
// token is needed: a console session cannot ask for one).
func (c *Client) ConsoleLoginCode(ctx context.Context) (LoginCode, error) {
	var lc LoginCode
	err := c.do(ctx, http.MethodPost, "/api/v1/console/login-codes", nil, &lc)
	return lc, err
}

// ConsoleURL is the address at which a browser signs in to the console with lc.
func (c *Client) ConsoleURL(lc LoginCode) string {
	return c.base.String() + lc.Path
}
