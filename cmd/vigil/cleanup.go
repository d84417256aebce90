package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/enforce"
)

func newCleanupCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cleanup",
		Short: "Remove every enforcement table Vigil installed, on the host and in every network namespace",
		Long: `Remove the nftables table "inet vigil" wherever it is: the host's namespace, every
process's namespace, and the named ones under /run/netns and /run/docker/netns. Run it as
root, with vigil up stopped (or it will install them again).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return errors.New("'vigil cleanup' must run as root")
			}
			removed, failed := 0, 0
			for _, ns := range namespaces() {
				ok, err := enforce.Installed(ns)
				if err != nil || !ok {
					continue
				}
				if err := enforce.Remove(ns); err != nil {
					failed++
					fmt.Fprintf(g.stderr, "vigil: %s: %v\n", ns, err)
					continue
				}
				removed++
				fmt.Fprintf(g.stdout, "removed table inet %s in %s\n", enforce.TableName, ns)
			}
			fmt.Fprintf(g.stdout, "%d tables removed\n", removed)
			if failed > 0 {
				return fmt.Errorf("%d tables could not be removed", failed)
			}
			return nil
		},
	}
}

// namespaces lists one path for every network namespace on the host, by inode.
func namespaces() []string {
	seen := map[uint64]bool{}
	var out []string
	add := func(path string) {
		var st syscall.Stat_t
		if syscall.Stat(path, &st) != nil || seen[st.Ino] {
			return
		}
		seen[st.Ino] = true
		out = append(out, path)
	}
	add("/proc/self/ns/net")
	for _, dir := range []string{"/run/netns", "/run/docker/netns", "/var/run/docker/netns"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			add(filepath.Join(dir, e.Name()))
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if strings.Trim(p.Name(), "0123456789") == "" {
			add(filepath.Join("/proc", p.Name(), "ns", "net"))
		}
	}
	return out
}
