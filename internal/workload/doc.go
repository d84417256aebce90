// Package workload is the registry of everything on a host that can own network traffic:
// containers and the host itself. For each workload it knows the identity (id, name, image,
// labels), the learned group, and where its network lives (network namespace, host-side veth
// interfaces, addresses), which later stages (capture, policy, enforcement) rely on.
//
// Container runtimes plug in through the [Runtime] interface; the Docker adapter lives in
// the docker subpackage. Kernel facts (namespaces, veth peers, addresses) come from a
// [NetResolver], implemented with rtnetlink by [KernelResolver].
//
// The [Registry] needs root to enter other network namespaces. It is safe for concurrent
// use. A caller that subscribes with [Registry.Subscribe] must drain its channel: a
// subscriber that falls behind is dropped (its channel closed, [Subscription.Err] returns
// [ErrLagged]) rather than slowing the registry down, and must subscribe again to get a
// fresh snapshot.
package workload
