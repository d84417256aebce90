package procmon

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Kill sends SIGKILL to process pid if it is still the one that started at startTicks.
// It holds a pidfd across the check and the signal, so a PID reused in between is never
// hit.
func Kill(procRoot string, pid int, startTicks uint64) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	defer unix.Close(fd)
	r := procReader{root: procRoot, buf: make([]byte, 4096)}
	if s := r.startTicks(pid); s != startTicks {
		return fmt.Errorf("kill %d: %w", pid, errGone)
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	return nil
}
