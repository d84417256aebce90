// Package controller aggregates what agents report: today the flows of the local agent,
// kept as a bounded history, streamed to subscribers, and folded into the connection
// graph. Policy, learning and events join it as they land.
//
// Flows is safe for concurrent use. Subscribers that fall behind are dropped (their
// channel closed, Err returning ErrLagged) rather than slowing the data path.
package controller
