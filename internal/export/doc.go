// Package export writes Vigil's policy as code and reads it back: Vigil's own policy
// YAML (MarshalYAML, UnmarshalYAML), Kubernetes NetworkPolicy (NetworkPolicies) and
// CiliumNetworkPolicy (CiliumPolicies). It depends on internal/policy only and does no
// I/O: callers read and write the files.
//
// The policy file is one YAML document, apiVersion vigil.dev/v1alpha1, kind Policy.
// spec holds what a person reviews and applies (the default mode, the groups with their
// modes and criteria, the rules); status holds what Vigil observed (hits, last hit,
// creation time), so that a diff of two exports shows policy changes, not counters.
// Reading is all or nothing: UnmarshalYAML returns a valid policy or a *FileError that
// lists every problem with its line and column.
//
// Traps:
//   - A NetworkPolicy or CiliumNetworkPolicy is enforced as soon as it is applied,
//     whatever the group's Vigil mode, and it is an allow-list: Vigil's deny rules are
//     not exported, and what a format cannot say exactly is widened, never dropped (a
//     comment in the output says where). Read the comments before applying.
//   - Learned groups have no criteria; the Kubernetes outputs select their pods by the
//     label vigil.group=<name without "vigil.">, the label Vigil itself reads to name a
//     container's group. Pods must carry it.
//   - UnmarshalYAML returns times in UTC and endpoints, criteria and ports in canonical
//     form: compare times with time.Time.Equal.
//
// All functions are safe for concurrent use; they share no state.
package export
