package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
)

func newConsoleCommand(g *globals) *cobra.Command {
	var printURL bool
	cmd := &cobra.Command{
		Use:   "console [--print-url]",
		Short: "Open the web console in a browser, signed in",
		Long: `Open Vigil's web console (served by 'vigil up' at its API address) in a browser, signed
in. The address carries a one-time login code, valid for two minutes, which the browser
exchanges for a session cookie; the API token itself never reaches the browser.

Where there is a graphical session (DISPLAY or WAYLAND_DISPLAY) the address is opened with
xdg-open, as the user who ran sudo when run through sudo; otherwise it is printed, to
open by hand (over an SSH tunnel to the API port, for a remote host). --print-url prints
only the address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			lc, err := c.ConsoleLoginCode(cmd.Context())
			if err != nil {
				return fmt.Errorf("get a console login code: %w", err)
			}
			u := c.ConsoleURL(lc)
			if printURL {
				_, err := fmt.Fprintln(g.stdout, u)
				return err
			}
			err = openBrowser(u)
			if err == nil {
				_, err := fmt.Fprintln(g.stderr, "Opened the Vigil console in your browser (if nothing shows, run vigil console --print-url).")
				return err
			}
			fmt.Fprintf(g.stderr, "Could not open a browser (%v).\n", err)
			_, err = fmt.Fprintf(g.stdout, "Open this address in a browser within two minutes; it signs in once:\n\n  %s\n", u)
			return err
		},
	}
	cmd.Flags().BoolVar(&printURL, "print-url", false, "print only the sign-in address")
	return cmd
}

// openBrowser opens u with xdg-open when there is a display. Under sudo it runs as the
// user who called sudo: a browser running as root is neither wanted nor, for most, able
// to start.
func openBrowser(u string) error {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return fmt.Errorf("no graphical session")
	}
	bin, err := exec.LookPath("xdg-open")
	if err != nil {
		return fmt.Errorf("xdg-open: %w", err)
	}
	cmd := exec.Command(bin, u)
	if os.Geteuid() == 0 {
		uid, err1 := strconv.Atoi(os.Getenv("SUDO_UID"))
		gid, err2 := strconv.Atoi(os.Getenv("SUDO_GID"))
		if err1 != nil || err2 != nil || uid == 0 {
			return fmt.Errorf("running as root without a sudo caller to open the browser as")
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("xdg-open: %w", err)
	}
	// xdg-open hands the address to the browser and exits; nothing to wait for.
	go func() { _ = cmd.Wait() }()
	return nil
}
