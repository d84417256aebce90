// Command setuidhelper is installed setuid root in a test image: it makes its real user
// root too (setuid(0)) and starts a shell, as a careless helper would.
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	if err := syscall.Setuid(0); err != nil {
		fmt.Fprintln(os.Stderr, "setuid(0):", err)
		os.Exit(1)
	}
	args := []string{"sh", "-c", "id -u; sleep 2"}
	if len(os.Args) > 1 {
		args = append([]string{"sh", "-c"}, os.Args[1:]...)
	}
	if err := syscall.Exec("/bin/sh", args, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "exec /bin/sh:", err)
		os.Exit(1)
	}
}
