package inventory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"github.com/vigil-sec/vigil/internal/scan"
)

// maxDepth bounds the directory depth walked (bind mounts can make loops).
const maxDepth = 256

// skippedFS are the filesystem types never walked: pseudo filesystems whose files are
// not installed software, and which can be endless or block on read.
var skippedFS = map[int64]string{
	unix.PROC_SUPER_MAGIC:      "proc",
	unix.SYSFS_MAGIC:           "sysfs",
	unix.CGROUP_SUPER_MAGIC:    "cgroup",
	unix.CGROUP2_SUPER_MAGIC:   "cgroup2",
	unix.DEVPTS_SUPER_MAGIC:    "devpts",
	unix.DEBUGFS_MAGIC:         "debugfs",
	unix.TRACEFS_MAGIC:         "tracefs",
	unix.SECURITYFS_MAGIC:      "securityfs",
	unix.PSTOREFS_MAGIC:        "pstore",
	unix.BPF_FS_MAGIC:          "bpf",
	unix.NSFS_MAGIC:            "nsfs",
	unix.HUGETLBFS_MAGIC:       "hugetlbfs",
	0x19800202 /* mqueue */ :   "mqueue",
	unix.BINFMTFS_MAGIC:        "binfmt_misc",
	unix.AUTOFS_SUPER_MAGIC:    "autofs",
	unix.FUSE_SUPER_MAGIC:      "fuse", // fusectl and FUSE mounts may block
	0x62656570 /* configfs */ : "configfs",
	0x65735543 /* fusectl */ :  "fusectl",
}

// hostSkipped are directories of the host that hold other targets (the container
// runtimes' image and container storage): scanning them as the host's software would
// report every image's packages as installed on the host.
var hostSkipped = map[string]bool{
	"/proc": true, "/sys": true, "/dev": true,
	"/var/lib/docker": true, "/var/lib/containerd": true, "/var/lib/containers": true,
	"/run/docker": true, "/run/containerd": true,
}

var rootSkipped = map[string]bool{"/proc": true, "/sys": true, "/dev": true}

// rootWalker walks a root filesystem through directory file descriptors. Every name is
// opened relative to its parent's descriptor with O_NOFOLLOW, so a symbolic link is never
// followed and the walk cannot leave the root, whatever the target does meanwhile.
type rootWalker struct {
	s       *session
	skipped map[string]bool
	out     []record
	walked  int64
}

func scanRoot(ctx context.Context, root string, host bool, o Options) (*scan.Inventory, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", root, err)
	}
	s := newSession(o)
	for _, d := range usrMergeDirs {
		buf := make([]byte, 64)
		if n, err := unix.Readlinkat(fd, d, buf); err == nil {
			s.noteMergedUsr(d, string(buf[:n]))
		}
	}
	w := &rootWalker{s: s, skipped: rootSkipped}
	if host {
		w.skipped = hostSkipped
	}
	err = w.walkDir(ctx, fd, "/", 0)
	unix.Close(fd)
	if err != nil {
		return nil, err
	}
	inv := &scan.Inventory{}
	s.finish(inv, w.out)
	return inv, nil
}

func (w *rootWalker) walkDir(ctx context.Context, dfd int, dir string, depth int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if depth > maxDepth {
		w.s.warnf("%s: deeper than %d directories: not walked", dir, maxDepth)
		return nil
	}
	names, err := readDirNames(dfd)
	if err != nil {
		w.s.warnf("%s: read directory: %v", dir, err)
		return nil
	}
	for _, name := range names {
		p := path.Join(dir, name)
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if !errors.Is(err, unix.ENOENT) {
				w.s.warnf("%s: stat: %v", p, err)
			}
			continue
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if w.skipped[p] {
				continue
			}
			if err := w.enterDir(ctx, dfd, name, p, depth); err != nil {
				return err
			}
		case unix.S_IFREG:
			w.walked++
			if w.s.opts.Progress != nil && w.walked%1024 == 0 {
				w.s.opts.Progress(w.walked, 0)
			}
			mode := fs.FileMode(st.Mode & 0o7777)
			idx, acc := w.s.wants(p, mode, st.Size)
			if acc == skip {
				continue
			}
			if st.Size > w.s.opts.MaxFileSize {
				w.s.warnf("%s: %d bytes, over the %d bound: skipped", p, st.Size, w.s.opts.MaxFileSize)
				continue
			}
			w.readFile(ctx, dfd, name, p, mode, idx, acc)
		}
	}
	return nil
}

func (w *rootWalker) enterDir(ctx context.Context, dfd int, name, p string, depth int) error {
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.ENOTDIR) {
			w.s.warnf("%s: open directory: %v", p, err)
		}
		return nil
	}
	defer unix.Close(fd)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err == nil {
		if _, bad := skippedFS[int64(sfs.Type)]; bad {
			return nil
		}
	}
	return w.walkDir(ctx, fd, p, depth+1)
}

func (w *rootWalker) readFile(ctx context.Context, dfd int, name, p string, mode fs.FileMode, idx []int, acc access) {
	// O_NONBLOCK: if the file was swapped for a FIFO since the stat, open does not hang.
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ELOOP) {
			w.s.warnf("%s: open: %v", p, err)
		}
		return
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return
	}
	size := st.Size()
	if size > w.s.opts.MaxFileSize {
		w.s.warnf("%s: %d bytes, over the %d bound: skipped", p, size, w.s.opts.MaxFileSize)
		return
	}
	in := &file{path: p, size: size, mode: mode}
	if acc == binary && !isELF(f) {
		return
	}
	if size <= memLimit && acc == content {
		b := make([]byte, size)
		n, err := io.ReadFull(f, b)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			w.s.warnf("%s: read: %v", p, err)
			return
		}
		in.data, in.size = b[:n], int64(n)
	} else {
		in.ra = f
	}
	w.s.run(ctx, idx, in, &w.out)
}

// readDirNames lists a directory through its descriptor without changing its offset for
// later users (the descriptor is used for nothing else).
func readDirNames(dfd int) ([]string, error) {
	nfd, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(nfd), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}
