// Package web holds Vigil's web console: its front end (TypeScript in src/, built with
// npm and esbuild into dist/app; see package.json) and the Go side that embeds the built
// files into the vigil binary, which internal/api serves at /.
//
// The embedding needs the files at compile time, and go vet, go test and a plain go build run
// on a clean clone where npm has not run. So the repository keeps one file in dist/,
// unbuilt.html, and ignores dist/app: a binary built without the front end embeds only
// that page and serves it in place of the console, saying how to build it; `make build`
// runs `npm ci && npm run build` first, so a real build never embeds stale or missing
// assets. Nothing is fetched at run time: every script and stylesheet is in the binary.
//
// Trap: the embedded tree is whatever dist/ held when the binary was compiled. After
// changing the front end, run `npm run build` (or make build) before go build.
package web
