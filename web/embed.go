package web

import (
	"embed"
	"errors"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// ErrNotBuilt says the binary was compiled before the front end was built.
var ErrNotBuilt = errors.New("the web console was not built into this binary: run make build (npm ci && npm run build in web/, then go build)")

// Console returns the built console: index.html at its root and the bundles under
// assets/. It returns ErrNotBuilt when dist/app was missing at compile time.
func Console() (fs.FS, error) {
	sub, err := fs.Sub(dist, "dist/app")
	if err != nil {
		return nil, err
	}
	if _, err := fs.Stat(sub, "index.html"); err != nil {
		return nil, ErrNotBuilt
	}
	return sub, nil
}

// Unbuilt is the page served at / in place of a console that was not built.
func Unbuilt() []byte {
	b, err := dist.ReadFile("dist/unbuilt.html")
	if err != nil {
		// The file is in the repository; only a broken checkout lacks it.
		return []byte("The Vigil console was not built into this binary: run make build.\n")
	}
	return b
}
