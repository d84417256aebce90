package procmon

// ExecAttempt is an exec the kernel holds until it is decided (fanotify
// FAN_OPEN_EXEC_PERM on the container's root filesystem): the file guard asks, the
// process profiles answer.
type ExecAttempt struct {
	// PID is the process calling execve, in the host's PID namespace; it still runs its
	// old program.
	PID int
	// Path is the file being executed as the container sees it (resolved: the target of
	// a symbolic link such as busybox's applets).
	Path string
	// ContainerID is the container whose root filesystem holds the file.
	ContainerID string
}
