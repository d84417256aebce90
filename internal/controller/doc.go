// Package controller aggregates what agents report and decides on it: the flows of the
// local agent (a bounded history, streamed to subscribers, folded into the connection
// graph), the policy engine that judges and learns them, the enforcer that turns the
// policy into nftables plans, the process engine (profiles and detections), the
// vulnerability service, the auditor, and the event log they all write to.
//
// Flows is safe for concurrent use. Subscribers that fall behind are dropped (their
// channel closed, Err returning ErrLagged) rather than slowing the data path.
package controller
