//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/vigil-sec/vigil/internal/workload"
	"github.com/vigil-sec/vigil/test/testenv"
)

// arrivalDeadline is how soon a container's arrival, change or departure must show.
const arrivalDeadline = time.Second

func TestWorkloadDiscovery(t *testing.T) {
	d := testenv.NewDocker(t)
	d.EnsureImage(t)
	userNet := d.Network(t, "")
	otherNet := d.Network(t, "")
	project := testenv.RandomName("shop")

	web := d.Run(t, testenv.ContainerSpec{Labels: map[string]string{
		workload.LabelComposeProject: project, workload.LabelComposeService: "web",
	}})
	db := d.Run(t, testenv.ContainerSpec{NetworkMode: userNet, Labels: map[string]string{workload.LabelGroup: "Orders-DB"}})
	hostC := d.Run(t, testenv.ContainerSpec{NetworkMode: "host"})
	sidecar := d.Run(t, testenv.ContainerSpec{NetworkMode: "container:" + web.ID})
	isolated := d.Run(t, testenv.ContainerSpec{NetworkMode: "none"})
	multi := d.Run(t, testenv.ContainerSpec{NetworkMode: userNet, Networks: []string{otherNet}, User: "65534", Privileged: true})

	v := startVigil(t)

	// The initial synchronisation is done when health says ok: everything is there.
	list := v.workloads(t)
	for _, c := range []testenv.Container{web, db, hostC, sidecar, isolated, multi} {
		w, ok := find(list, c.ID)
		if !ok {
			t.Fatalf("container %s is not among the workloads", c.Name)
		}
		checkAgainstDocker(t, d, w)
	}

	host, ok := find(list, workload.HostID)
	if !ok {
		t.Fatal("the host is not a workload")
	}
	if host.Kind != workload.KindHost || host.Group != workload.HostGroup || host.NetNS.Inode != inode(t, "/proc/self/ns/net") {
		t.Errorf("host workload = %+v", host)
	}

	byID := func(id string) workload.Workload { w, _ := find(list, id); return w }
	if g := byID(web.ID).Group; g != "vigil."+project+"-web" {
		t.Errorf("compose container group = %q, want vigil.%s-web", g, project)
	}
	if g := byID(db.ID).Group; g != "vigil.orders-db" {
		t.Errorf("labelled container group = %q, want vigil.orders-db", g)
	}
	if g := byID(isolated.ID).Group; g != "vigil.vigil-test-busybox" {
		t.Errorf("image container group = %q, want vigil.vigil-test-busybox", g)
	}

	hw := byID(hostC.ID)
	if hw.NetworkMode != "host" || hw.SharesNetNSWith != workload.HostID || len(hw.Interfaces) != 0 || hw.NetNS.Inode != host.NetNS.Inode {
		t.Errorf("host-network container: mode %q shares %q interfaces %v netns %d (host %d)",
			hw.NetworkMode, hw.SharesNetNSWith, hw.Interfaces, hw.NetNS.Inode, host.NetNS.Inode)
	}
	sw, ww := byID(sidecar.ID), byID(web.ID)
	if sw.SharesNetNSWith != web.ID || sw.NetNS.Inode != ww.NetNS.Inode || !slices.Equal(sw.IPs, ww.IPs) ||
		len(sw.Interfaces) != 1 || sw.Interfaces[0].Ifindex != ww.Interfaces[0].Ifindex {
		t.Errorf("container:%s sidecar: shares %q netns %d ips %v interfaces %v; owner netns %d ips %v interfaces %v",
			web.Name, sw.SharesNetNSWith, sw.NetNS.Inode, sw.IPs, sw.Interfaces, ww.NetNS.Inode, ww.IPs, ww.Interfaces)
	}
	if iw := byID(isolated.ID); iw.NetworkMode != "none" || len(iw.Interfaces) != 0 || len(iw.IPs) != 0 {
		t.Errorf("--network none container: mode %q interfaces %v ips %v", iw.NetworkMode, iw.Interfaces, iw.IPs)
	}
	mw := byID(multi.ID)
	if len(mw.Interfaces) != 2 || len(mw.Networks) != 2 || len(mw.IPs) != 2 {
		t.Errorf("container on two networks: interfaces %v networks %v ips %v", mw.Interfaces, mw.Networks, mw.IPs)
	}
	if !mw.Privileged || mw.User != "65534" {
		t.Errorf("privileged=%v user=%q, want true and 65534", mw.Privileged, mw.User)
	}

	t.Run("container started later appears within 1s", func(t *testing.T) {
		late := d.Create(t, testenv.ContainerSpec{NetworkMode: userNet})
		d.Start(t, late.ID)
		var w workload.Workload
		eventually(t, arrivalDeadline, "the new container", func() (bool, string) {
			var ok bool
			w, ok = find(v.workloads(t), late.ID)
			return ok && len(w.Interfaces) == 1, fmt.Sprintf("present=%v interfaces=%v", ok, w.Interfaces)
		})
		checkAgainstDocker(t, d, w)

		newName := testenv.RandomName("renamed")
		if _, err := d.Client.ContainerRename(context.Background(), late.ID, client.ContainerRenameOptions{NewName: newName}); err != nil {
			t.Fatal(err)
		}
		eventually(t, arrivalDeadline, "the rename", func() (bool, string) {
			w, _ := find(v.workloads(t), late.ID)
			return w.Name == newName, "name " + w.Name
		})

		if _, err := d.Client.NetworkConnect(context.Background(), otherNet, client.NetworkConnectOptions{Container: late.ID}); err != nil {
			t.Fatal(err)
		}
		eventually(t, arrivalDeadline, "the second network's interface", func() (bool, string) {
			w, _ = find(v.workloads(t), late.ID)
			return len(w.Interfaces) == 2, fmt.Sprintf("interfaces %v", w.Interfaces)
		})
		checkAgainstDocker(t, d, w)

		d.Stop(t, late.ID)
		eventually(t, arrivalDeadline, "the stopped container to go", func() (bool, string) {
			_, ok := find(v.workloads(t), late.ID)
			return !ok, "still listed"
		})
	})

	t.Run("lookup by name and prefix", func(t *testing.T) {
		for _, ref := range []string{db.ID, db.Name, db.ID[:12]} {
			w, err := v.Client.Workload(context.Background(), ref)
			if err != nil || w.ID != db.ID {
				t.Errorf("GET workload %q: %v, id %q", ref, err, w.ID)
			}
		}
	})

	t.Run("groups", func(t *testing.T) {
		groups, err := v.Client.Groups(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var members []string
		for _, g := range groups {
			if g.Name == "vigil."+project+"-web" {
				for _, m := range g.Members {
					members = append(members, m.ID)
				}
			}
		}
		if !slices.Contains(members, web.ID) {
			t.Errorf("group vigil.%s-web members %v lack %s", project, members, web.ID)
		}
	})

	t.Run("API needs the token", func(t *testing.T) {
		for _, auth := range []string{"", "Bearer wrong", "Basic abc"} {
			req, _ := http.NewRequest(http.MethodGet, v.URL+"/api/v1/workloads", nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("Authorization %q: status %d, want 401", auth, resp.StatusCode)
			}
		}
		resp, err := http.Get(v.URL + "/api/v1/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("health without token: status %d, want 200", resp.StatusCode)
		}
		info, err := os.Stat(v.TokenFile)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("token file mode %04o, want 0600", info.Mode().Perm())
		}
		dinfo, err := os.Stat(v.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		if dinfo.Mode().Perm() != 0o700 {
			t.Errorf("data dir mode %04o, want 0700", dinfo.Mode().Perm())
		}
	})

	t.Run("CLI", func(t *testing.T) {
		out := runCLI(t, v, "workloads", "-o", "json")
		var objs []map[string]any
		if err := json.Unmarshal([]byte(out), &objs); err != nil {
			t.Fatalf("vigil workloads -o json: %v\n%s", err, out)
		}
		var seen bool
		for _, o := range objs {
			for _, k := range []string{"id", "name", "image", "group", "pid", "network_mode", "netns", "interfaces", "ips", "labels", "state"} {
				if _, ok := o[k]; !ok {
					t.Errorf("workload %v lacks field %q", o["name"], k)
				}
			}
			if o["id"] == web.ID {
				seen = true
				ifs, _ := o["interfaces"].([]any)
				if len(ifs) != 1 {
					t.Fatalf("web interfaces = %v", o["interfaces"])
				}
				f := ifs[0].(map[string]any)
				for _, k := range []string{"name", "ifindex", "ips"} {
					if _, ok := f[k]; !ok {
						t.Errorf("interface lacks %q: %v", k, f)
					}
				}
			}
		}
		if !seen {
			t.Errorf("vigil workloads -o json lacks %s", web.Name)
		}
		table := runCLI(t, v, "workloads")
		if !strings.Contains(table, web.Name) || !strings.Contains(table, "vigil."+project+"-web") {
			t.Errorf("vigil workloads table lacks %s:\n%s", web.Name, table)
		}
		groups := runCLI(t, v, "groups", "-o", "json")
		if !strings.Contains(groups, web.ID) {
			t.Errorf("vigil groups -o json lacks %s:\n%s", web.ID, groups)
		}
	})
}

func runCLI(t *testing.T, v *vigilProc, args ...string) string {
	t.Helper()
	args = append(args, "--server", v.URL, "--token-file", v.TokenFile)
	out, err := exec.Command(vigilBin, args...).Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("vigil %s: %v: %s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// checkAgainstDocker compares Vigil's description of a container with Docker's and the
// kernel's own, read independently of Vigil's code.
func checkAgainstDocker(t *testing.T, d *testenv.Docker, w workload.Workload) {
	t.Helper()
	c := d.Inspect(t, w.ID)
	if w.PID != c.State.Pid || w.Name != strings.TrimPrefix(c.Name, "/") || w.ImageID != c.Image || w.Image != c.Config.Image {
		t.Errorf("%s: pid %d name %q image %q/%q; docker says %d %q %q/%q", w.Name, w.PID, w.Name, w.Image, w.ImageID, c.State.Pid, c.Name, c.Config.Image, c.Image)
	}
	if w.NetworkMode != string(c.HostConfig.NetworkMode) {
		t.Errorf("%s: network mode %q, docker says %q", w.Name, w.NetworkMode, c.HostConfig.NetworkMode)
	}
	if want := inode(t, fmt.Sprintf("/proc/%d/ns/net", c.State.Pid)); w.NetNS.Inode != want {
		t.Errorf("%s: netns inode %d, want %d", w.Name, w.NetNS.Inode, want)
	}
	var want []netip.Addr
	for _, ep := range c.NetworkSettings.Networks {
		if ep.IPAddress.IsValid() {
			want = append(want, ep.IPAddress)
		}
	}
	if c.HostConfig.NetworkMode.IsContainer() || c.HostConfig.NetworkMode.IsHost() {
		want = nil // addresses live with the namespace's owner
	}
	for _, ip := range want {
		if !slices.Contains(w.IPs, ip) {
			t.Errorf("%s: ips %v lack docker's %v", w.Name, w.IPs, ip)
		}
	}
	if !c.HostConfig.NetworkMode.IsContainer() && !c.HostConfig.NetworkMode.IsHost() && len(w.IPs) != len(want) {
		t.Errorf("%s: ips %v, docker says %v", w.Name, w.IPs, want)
	}
	if c.HostConfig.NetworkMode.IsHost() || c.HostConfig.NetworkMode.IsNone() || c.HostConfig.NetworkMode.IsContainer() {
		return
	}
	if len(w.Interfaces) != len(c.NetworkSettings.Networks) {
		t.Errorf("%s: %d interfaces for %d networks: %+v", w.Name, len(w.Interfaces), len(c.NetworkSettings.Networks), w.Interfaces)
	}
	for _, in := range w.Interfaces {
		// The container's end names the host end's ifindex in iflink; the host's sysfs
		// names it by the interface name Vigil gave.
		peerLink := strings.TrimSpace(d.Exec(t, w.ID, "cat", "/sys/class/net/"+in.PeerName+"/iflink"))
		peerIndex := strings.TrimSpace(d.Exec(t, w.ID, "cat", "/sys/class/net/"+in.PeerName+"/ifindex"))
		hostIndex := readTrim(t, "/sys/class/net/"+in.Name+"/ifindex")
		if peerLink != strconv.Itoa(in.Ifindex) || hostIndex != strconv.Itoa(in.Ifindex) || peerIndex != strconv.Itoa(in.PeerIfindex) {
			t.Errorf("%s: interface %+v; container's %s iflink %s ifindex %s, host's %s ifindex %s",
				w.Name, in, in.PeerName, peerLink, peerIndex, in.Name, hostIndex)
		}
		if in.Network == "" || c.NetworkSettings.Networks[in.Network] == nil ||
			!slices.Contains(in.IPs, c.NetworkSettings.Networks[in.Network].IPAddress) {
			t.Errorf("%s: interface %s network %q ips %v do not match docker's networks", w.Name, in.Name, in.Network, in.IPs)
		}
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return strings.TrimSpace(string(b))
}
