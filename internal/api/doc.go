// Package api is Vigil's REST API: the HTTP server that `vigil up` runs, its bearer-token
// authentication, and the client the command line uses.
//
// Every endpoint but /api/v1/health needs the token in an "Authorization: Bearer" header.
// The token is created at first start in the data dir with mode 0600; [LoadOrCreateToken]
// refuses a token file that others can read, since the token is the only credential.
// Responses are JSON; errors are {"error": "..."} with a fitting status code.
package api
