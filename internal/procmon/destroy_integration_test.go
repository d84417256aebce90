//go:build integration

package procmon

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// DestroySocket on a real connection in the test's own namespace (needs root).
func TestDestroySocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	defer server.Close()

	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	ns := NetNSRef{Path: "/proc/self/ns/net", Inode: st.Ino}
	local := netip.MustParseAddrPort(server.LocalAddr().String())
	remote := netip.MustParseAddrPort(server.RemoteAddr().String())
	if err := DestroySocket(ns, local, remote); err != nil {
		t.Fatalf("DestroySocket: %v", err)
	}
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := server.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNABORTED) {
		t.Errorf("the destroyed socket's owner read %v, want ECONNABORTED", err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
		t.Errorf("the peer read %v, want a reset", err)
	}
	none := netip.AddrPortFrom(remote.Addr(), 1)
	if err := DestroySocket(ns, local, none); !errors.Is(err, ErrNoSuchSocket) {
		t.Errorf("DestroySocket of no connection = %v, want ErrNoSuchSocket", err)
	}
	// The kernel's lookup falls back to the listener for a connection it does not know:
	// the listener must have been left alone.
	again, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("the listener is gone: %v", err)
	}
	again.Close()
}
