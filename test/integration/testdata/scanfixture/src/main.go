// Command vigil-scan-fixture sleeps until killed: a running process whose executable is a
// Go binary built with an old toolchain and an old golang.org/x/text, for the scanner's
// integration test.
package main

import (
	"os"
	"time"

	"golang.org/x/text/transform"
)

func main() {
	// One real use, so that the module is linked and recorded in the build info.
	_, _, _ = transform.Nop.Transform(nil, nil, true)
	if len(os.Args) > 1 {
		return
	}
	for {
		time.Sleep(time.Hour)
	}
}
