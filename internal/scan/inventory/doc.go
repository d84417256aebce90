// Package inventory lists what a target holds: its operating system (os-release), the
// packages of its distro databases (dpkg, apk, rpm) and the language packages found in
// Go and Rust binaries, node_modules, Python site-packages, Java archives, Ruby gemspecs,
// and lock and dependency files. A target is an image (in the local Docker daemon, a
// `docker save` archive or an OCI layout), a running container, the host, or a
// directory.
//
// Images are never extracted. A first pass reads the tar headers of every layer and
// builds the merged view of the image (path → layer and entry that wrote it last, with
// whiteouts and opaque directories applied); a second pass reads only the entries an
// extractor asked for, in memory when small, else copied to a temporary file that is
// removed as soon as its extractor returns. Temporary files are named by a counter, never
// by a name taken from the archive, so a hostile archive cannot make the scanner write
// outside its temporary directory. The daemon's image is first saved (ImageSave) to a
// temporary file, because `docker save` writes manifest.json last.
//
// Containers (through /proc/PID/root), the host and directories are walked with file
// descriptors: every entry is opened with openat(O_NOFOLLOW) relative to its parent
// directory's descriptor, so no symbolic link is ever followed and a hostile link cannot
// lead the scan out of the target root, even if the target changes during the scan.
// Pseudo filesystems (/proc, /sys, /dev) and, on the host, the container runtimes' own
// storage are not walked.
//
// Needs: read access to the target (root for containers and the host) and, for images
// in the daemon and for containers, the Docker Engine API. No kernel feature beyond
// openat.
//
// Traps: a database's packages are attributed to the first layer of the trailing run of
// layers whose copy of the database lists the package at the same version, so a package
// is not blamed on the layer that merely rewrote /var/lib/dpkg/status. The rpm sqlite
// backend (rpmdb.sqlite, Fedora 33+, RHEL 9) is not read: its only CGO-free driver
// (modernc) would add about 6 MB to the binary; such a database gives a warning. Layers
// may be plain, gzip or zstd (github.com/klauspost/compress, one goroutine, windows up to
// 128 MiB); the bomb bound applies to all three.
package inventory
