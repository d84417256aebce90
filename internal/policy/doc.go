// Package policy is Vigil's network policy model: groups and their modes, rules between
// groups, the evaluator that judges a connection, and the learner that turns what it sees
// in Discover mode into rules a person can read ("vigil.web may reach vigil.db on
// tcp/5432 with postgresql").
//
// It is pure Go: no I/O, nothing from the kernel, and no dependency on the rest of Vigil.
// The agent translates flows and workloads into its types (Conn, Subject); the store and
// the policy file read and write its plain data (Policy, Group, Rule), whose enumerations
// and port ranges marshal as text.
//
// The pieces:
//   - Policy is plain data. Compile validates it and builds an Evaluator.
//   - Evaluator.Evaluate judges a Conn: the first matching rule decides, user deny rules
//     before user allow rules before learned ones (imported rules rank as user rules);
//     when none matches, the stricter mode of the two ends does: Discover learns,
//     Monitor reports a violation, Protect denies. It neither allocates nor locks.
//   - Learner turns connections judged ActionLearn into learned allow rules, keyed by
//     (client group, server group, protocol/server port), with deterministic ids.
//
// Traps:
//   - An Evaluator is immutable and safe for concurrent use; to change the policy,
//     compile a new one and swap it in whole (atomic.Pointer). Hits are counted on the
//     Evaluator (Count) and are the caller's to collect (TakeHits) and fold back into the
//     stored rules, from the old Evaluator too after a swap, or they are lost with it.
//   - Conn endpoints are not parsed on the hot path: pass canonical names (group names,
//     ExternalEndpoint, AddressEndpoint, EndpointHost), or rules will not match.
//   - The Learner owns the learned rules and is not safe for concurrent use; the caller
//     persists each Change, rebuilds the Policy's rules (SetLearned) and recompiles when
//     Change.Recompile says so. Until then the same connection is judged ActionLearn
//     again; learning it again only counts a hit.
//   - A learned rule's id belongs to its key: promoting one to a user rule must give it
//     a new id, or learning the same key again would reuse the old one.
package policy
