package export

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-sec/vigil/internal/procmon"
)

// KindProcessProfiles is the kind of the document of process profiles that follows the
// Policy document in an export.
const KindProcessProfiles = "ProcessProfiles"

// ProcessProfile is one group's process profile.
type ProcessProfile struct {
	Group   string
	Entries []procmon.ProfileEntry
}

// MarshalProcessProfiles writes the profiles as one YAML document (kind
// ProcessProfiles), groups by name, each with the processes it may run:
//
//	spec:
//	  groups:
//	    - name: vigil.web
//	      processes:
//	        - {exe: /usr/sbin/nginx, name: nginx, uid: 101}
//
// It writes nothing (nil) when there are no profiles.
func MarshalProcessProfiles(profiles []ProcessProfile) ([]byte, error) {
	profiles = slices.Clone(profiles)
	slices.SortFunc(profiles, func(a, b ProcessProfile) int { return strings.Compare(a.Group, b.Group) })
	list := sequence()
	for _, p := range profiles {
		if len(p.Entries) == 0 {
			continue
		}
		procs := sequence()
		for _, e := range p.Entries {
			m := flow(mapping("exe", scalar(e.Exe), "name", scalar(e.Name),
				"uid", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(e.UID)}))
			procs.Content = append(procs.Content, m)
		}
		g := mapping("name", scalar(p.Group), "processes", procs)
		g.HeadComment = fmt.Sprintf("%s may run these %d programs (executable, name, effective user ID)", p.Group, len(p.Entries))
		list.Content = append(list.Content, g)
	}
	if len(list.Content) == 0 {
		return nil, nil
	}
	doc := mapping("apiVersion", scalar(APIVersion), "kind", scalar(KindProcessProfiles), "spec", mapping("groups", list))
	doc.HeadComment = "Vigil process profiles: what each group learned to run in discover mode.\n" +
		"In monitor mode a process outside its group's profile is reported; in protect mode it is stopped."
	return encode(doc)
}

// processProfiles checks a ProcessProfiles document as strictly as the policy: known
// fields only, each group once, each process with an absolute executable, a name and a
// user ID.
func (r *reader) processProfiles(root *yaml.Node) []ProcessProfile {
	top, ok := r.fields(root, "", "apiVersion", "kind", "spec")
	if !ok {
		return nil
	}
	r.require(root, "", top, "apiVersion", "kind", "spec")
	if n := top["apiVersion"]; n != nil {
		if v, ok := r.scalar(n, "apiVersion"); ok && v != APIVersion {
			r.addf(n, "apiVersion", "%q is not a version this Vigil reads; want %s", v, APIVersion)
		}
	}
	spec := top["spec"]
	if spec == nil {
		return nil
	}
	f, ok := r.fields(spec, "spec", "groups")
	if !ok || f["groups"] == nil {
		return nil
	}
	items, ok := r.list(f["groups"], "spec.groups")
	if !ok {
		return nil
	}
	var out []ProcessProfile
	seen := map[string]int{}
	for i, item := range items {
		at := "spec.groups[" + strconv.Itoa(i) + "]"
		gf, ok := r.fields(item, at, "name", "processes")
		if !ok {
			continue
		}
		r.require(item, at, gf, "name", "processes")
		var p ProcessProfile
		if n := gf["name"]; n != nil {
			if v, ok := r.scalar(n, at+".name"); ok {
				if line, dup := seen[v]; dup {
					r.addf(n, at+".name", "group %q is listed twice (first at line %d)", v, line)
				}
				seen[v] = n.Line
				p.Group = v
			}
		}
		if n := gf["processes"]; n != nil {
			procs, ok := r.list(n, at+".processes")
			if !ok {
				continue
			}
			for j, pn := range procs {
				pat := at + ".processes[" + strconv.Itoa(j) + "]"
				pf, ok := r.fields(pn, pat, "exe", "name", "uid")
				if !ok {
					continue
				}
				r.require(pn, pat, pf, "exe", "name", "uid")
				var e procmon.ProfileEntry
				if n := pf["exe"]; n != nil {
					if v, ok := r.scalar(n, pat+".exe"); ok {
						if !strings.HasPrefix(v, "/") {
							r.addf(n, pat+".exe", "executable %q is not an absolute path", v)
						}
						e.Exe = v
					}
				}
				if n := pf["name"]; n != nil {
					if v, ok := r.scalar(n, pat+".name"); ok {
						if v == "" || len(v) > 15 {
							r.addf(n, pat+".name", "name %q: want 1 to 15 characters, as the kernel keeps", v)
						}
						e.Name = v
					}
				}
				if n := pf["uid"]; n != nil {
					if v, ok := r.scalar(n, pat+".uid"); ok {
						uid, err := strconv.ParseUint(v, 10, 32)
						if err != nil {
							r.addf(n, pat+".uid", "uid %q is not a user ID", v)
						}
						e.UID = int(uid)
					}
				}
				p.Entries = append(p.Entries, e)
			}
		}
		out = append(out, p)
	}
	return out
}

// profilesDocument checks next, the document after the policy, when it is a
// ProcessProfiles document, and that none follows it; false when it is another kind.
func (r *reader) profilesDocument(dec *yaml.Decoder, next *yaml.Node) bool {
	if next.Kind != yaml.DocumentNode || len(next.Content) != 1 || next.Content[0].Kind != yaml.MappingNode {
		return false
	}
	root := next.Content[0]
	isProfiles := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "kind" && root.Content[i+1].Value == KindProcessProfiles {
			isProfiles = true
		}
	}
	if !isProfiles {
		return false
	}
	if r.aliases(next) {
		return true
	}
	r.processProfiles(root)
	var third yaml.Node
	if err := dec.Decode(&third); err == nil {
		at := &third
		if len(third.Content) > 0 {
			at = third.Content[0]
		}
		r.addf(at, "", "a policy file holds a policy and its process profiles; this is a third document")
	}
	return true
}

// UnmarshalProcessProfiles reads the ProcessProfiles document of a policy file (the
// second document, after the Policy); none when the file has none. The file is checked
// by UnmarshalYAML; this only extracts the profiles.
func UnmarshalProcessProfiles(data []byte) ([]ProcessProfile, error) {
	if len(data) > MaxYAMLSize {
		return nil, ErrTooLarge
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var first, second yaml.Node
	if err := dec.Decode(&first); err != nil {
		return nil, nil
	}
	if err := dec.Decode(&second); err != nil || len(second.Content) != 1 {
		return nil, nil
	}
	r := reader{}
	out := r.processProfiles(second.Content[0])
	if err := r.err(); err != nil {
		return nil, err
	}
	return out, nil
}
