// The map's data, kept apart from drawing so that it can be tested without a browser.
//
// The model holds workload-level nodes and edges, as the controller's graph does
// (controller/graph.go): a workload node belongs to a group node; the host, external names
// and unmanaged addresses stand for themselves. The view folds workloads into their group
// unless the group is expanded, and applies the filters.
//
// Counts come from three sources that overlap: the graph snapshot (GET /api/v1/graph),
// the flow list (verdicts and processes of recent flows) and the flow stream. The model
// remembers which flows it has counted, and how many bytes of each, so a flow is counted
// once and its bytes as they grow, whichever source told of it first.

import type { Endpoint, FlowEvent, FlowRecord, Graph, GraphEdge, NodeKind, VigilEvent, Workload } from './types';

export type Verdict = 'allowed' | 'violation' | 'denied' | 'unknown';

export interface NodeInfo {
  id: string;
  kind: NodeKind;
  label: string;
  /** The group node of a workload node. */
  group?: string;
}

export interface VerdictCounts {
  allow: number;
  learn: number;
  violate: number;
  deny: number;
}

export interface EdgeInfo {
  key: string;
  source: string;
  target: string;
  proto: string;
  port: number;
  app: string;
  flows: number;
  bytes: number;
  firstSeen: number; // ms since the epoch
  lastSeen: number;
  verdicts: VerdictCounts;
  /** The most recent flows of the edge, newest first, at most recentPerEdge. */
  recent: FlowRecord[];
}

const recentPerEdge = 20;
/** How many flows the model remembers as counted; past it the oldest are forgotten. */
const maxCounted = 200_000;

export function edgeKey(source: string, target: string, proto: string, port: number, app: string): string {
  return `${source}|${target}|${proto}|${port}|${app}`;
}

/** The workload-level node of a flow's end, and the node itself, as controller.nodeOf. */
export function endpointNode(e: Endpoint): NodeInfo {
  switch (e.kind) {
    case 'workload': {
      const group = 'group:' + (e.group ?? '');
      return { id: 'workload:' + (e.workload ?? ''), kind: 'workload', label: e.name || e.workload || e.ip, group };
    }
    case 'host':
      return { id: 'host', kind: 'host', label: e.name || 'host' };
    case 'external': {
      const label = e.name || e.ip;
      return { id: 'external:' + label, kind: 'external', label };
    }
    default:
      return { id: `${e.kind}:${e.ip}`, kind: e.kind as NodeKind, label: e.ip };
  }
}

/** The port of an edge: the server's, none for ICMP. */
export function edgePort(r: FlowRecord): number {
  return r.proto === 'icmp' || r.proto === 'icmpv6' ? 0 : r.server.port;
}

/** The colour class of an edge: the worst verdict of its flows. */
export function verdictOf(v: VerdictCounts): Verdict {
  if (v.deny > 0) return 'denied';
  if (v.violate > 0) return 'violation';
  if (v.allow > 0 || v.learn > 0) return 'allowed';
  return 'unknown';
}

/** The name the policy gives a node: a group name, host, external[:name] or address:IP. */
export function policyName(n: NodeInfo): string {
  switch (n.kind) {
    case 'group':
      return n.id.slice('group:'.length);
    case 'workload':
      return (n.group ?? '').slice('group:'.length);
    case 'host':
      return 'host';
    case 'external':
      return isIP(n.label) ? 'external' : 'external:' + n.label;
    default:
      return 'address:' + n.label;
  }
}

/** The node a policy endpoint name stands for at group level, or undefined. */
export function nodeOfPolicyName(name: string): string | undefined {
  if (name === 'host') return 'host';
  if (name === 'external') return undefined; // any external address: no one node
  if (name.startsWith('external:')) return name;
  if (name.startsWith('address:')) return undefined;
  return 'group:' + name;
}

/** Whether s is an IP address rather than a DNS name (which never holds a colon). */
export function isIP(s: string): boolean {
  return s.includes(':') || /^\d{1,3}(\.\d{1,3}){3}$/.test(s);
}

function time(s: string | undefined): number {
  if (!s) return 0;
  const t = Date.parse(s);
  return Number.isNaN(t) ? 0 : t;
}

function zeroVerdicts(): VerdictCounts {
  return { allow: 0, learn: 0, violate: 0, deny: 0 };
}

export class GraphModel {
  readonly nodes = new Map<string, NodeInfo>();
  readonly edges = new Map<string, EdgeInfo>();
  /** Flows counted: id -> the edge they were counted on and their bytes then. */
  private readonly counted = new Map<number, { key: string; bytes: number }>();
  /** Flows whose verdict was counted: id -> the edge. */
  private readonly judged = new Map<number, string>();
  /** Violation events already folded in: id -> count. */
  private readonly violations = new Map<number, number>();
  /** Bumped on every change, so a view knows when to rebuild. */
  version = 0;

  addNode(n: NodeInfo): void {
    const old = this.nodes.get(n.id);
    if (!old || old.label !== n.label || old.group !== n.group) {
      this.nodes.set(n.id, { ...old, ...n });
      this.version++;
    }
  }

  /** Adds the running workloads, so that containers without traffic are on the map too. */
  addWorkloads(list: Workload[]): void {
    for (const w of list) {
      if (w.kind === 'host') {
        this.addNode({ id: 'host', kind: 'host', label: w.name || 'host' });
        continue;
      }
      const group = 'group:' + w.group;
      this.addNode({ id: group, kind: 'group', label: w.group });
      this.addNode({ id: 'workload:' + w.id, kind: 'workload', label: w.name, group });
    }
  }

  /** Removes the workload nodes (not groups) of containers that are gone and carry no edge. */
  pruneWorkloads(list: Workload[]): void {
    const live = new Set(list.map((w) => 'workload:' + w.id));
    const used = new Set<string>();
    for (const e of this.edges.values()) {
      used.add(e.source);
      used.add(e.target);
    }
    for (const [id, n] of this.nodes) {
      if (n.kind === 'workload' && !live.has(id) && !used.has(id)) {
        this.nodes.delete(id);
        this.version++;
      }
    }
  }

  /**
   * Loads a graph snapshot: its nodes, and the counts of its workload-level edges, which
   * replace the model's (the snapshot is the controller's truth; the stream only fills
   * the time between snapshots). Verdicts and recent flows are kept.
   */
  loadGraph(g: Graph): void {
    for (const n of g.nodes ?? []) {
      if (n.kind === 'group' || n.kind === 'workload' || n.kind === 'host' || n.kind === 'external' || n.kind === 'internal' || n.kind === 'address') {
        this.addNode({ id: n.id, kind: n.kind, label: n.label, group: n.group || undefined });
      }
    }
    for (const e of g.workload_edges ?? []) {
      this.setEdgeCounts(e);
    }
    this.version++;
  }

  private setEdgeCounts(e: GraphEdge): void {
    const key = edgeKey(e.source, e.target, e.proto, e.port, e.app);
    const cur = this.edge(key, e.source, e.target, e.proto, e.port, e.app);
    cur.flows = Math.max(cur.flows, e.flows);
    cur.bytes = Math.max(cur.bytes, e.bytes);
    const first = time(e.first_seen);
    if (first && (!cur.firstSeen || first < cur.firstSeen)) cur.firstSeen = first;
    cur.lastSeen = Math.max(cur.lastSeen, time(e.last_seen));
  }

  private edge(key: string, source: string, target: string, proto: string, port: number, app: string): EdgeInfo {
    let e = this.edges.get(key);
    if (!e) {
      e = { key, source, target, proto, port, app, flows: 0, bytes: 0, firstSeen: 0, lastSeen: 0, verdicts: zeroVerdicts(), recent: [] };
      this.edges.set(key, e);
    }
    return e;
  }

  /** The workload-level edge key of a flow, adding its nodes. */
  private keyOf(r: FlowRecord): { key: string; source: string; target: string } {
    const c = endpointNode(r.client);
    const s = endpointNode(r.server);
    for (const n of [c, s]) {
      if (n.group) this.addNode({ id: n.group, kind: 'group', label: n.group.slice('group:'.length) });
      this.addNode(n);
    }
    const port = edgePort(r);
    return { key: edgeKey(c.id, s.id, r.proto, port, r.app || ''), source: c.id, target: s.id };
  }

  /**
   * Folds in flows listed by GET /api/v1/flows: their verdicts and processes. counts says
   * whether they also count (false right after a snapshot that already counted them).
   */
  addFlows(records: FlowRecord[], counts: boolean): void {
    // Oldest first, so that recent lists end newest first.
    for (let i = records.length - 1; i >= 0; i--) {
      this.addFlow(records[i], counts);
    }
  }

  /** Folds in one event of the flow stream. */
  applyFlowEvent(ev: FlowEvent): void {
    this.addFlow(ev.flow, true);
    if (ev.type === 'end') {
      // An ended flow reports no more; its memory can go once it is out of reach.
      this.forgetSoon(ev.flow.id);
    }
  }

  private endedOrder: number[] = [];

  private forgetSoon(id: number): void {
    this.endedOrder.push(id);
    // Keep the memory of ended flows for a while: a late duplicate (the same end from a
    // reconnected stream and a list) must not count again.
    while (this.endedOrder.length > 20_000) {
      const old = this.endedOrder.shift()!;
      this.counted.delete(old);
      this.judged.delete(old);
    }
  }

  private addFlow(r: FlowRecord, counts: boolean): void {
    const { key, source, target } = this.keyOf(r);
    const e = this.edge(key, source, target, r.proto, edgePort(r), r.app || '');
    const prev = this.counted.get(r.id);
    if (counts) {
      if (!prev) {
        e.flows++;
        e.bytes += r.bytes;
      } else if (prev.key !== key) {
        // The application became known after the start: move the flow with its bytes.
        const old = this.edges.get(prev.key);
        if (old) {
          old.flows = Math.max(0, old.flows - 1);
          old.bytes = Math.max(0, old.bytes - prev.bytes);
          old.recent = old.recent.filter((x) => x.id !== r.id);
          if (old.flows === 0) this.edges.delete(prev.key);
        }
        e.flows++;
        e.bytes += r.bytes;
      } else {
        e.bytes += Math.max(0, r.bytes - prev.bytes);
      }
    }
    if (counts || !prev) {
      this.counted.set(r.id, { key, bytes: Math.max(r.bytes, prev?.bytes ?? 0) });
      if (this.counted.size > maxCounted) {
        const first = this.counted.keys().next().value;
        if (first !== undefined) this.counted.delete(first);
      }
    }
    const first = time(r.first_seen);
    if (first && (!e.firstSeen || first < e.firstSeen)) e.firstSeen = first;
    e.lastSeen = Math.max(e.lastSeen, time(r.last_seen));

    const judgedOn = this.judged.get(r.id);
    if (r.verdict && judgedOn !== key) {
      if (judgedOn) {
        const old = this.edges.get(judgedOn);
        if (old) this.countVerdict(old, r.verdict, -1);
      }
      this.countVerdict(e, r.verdict, 1);
      this.judged.set(r.id, key);
    }
    const i = e.recent.findIndex((x) => x.id === r.id);
    if (i >= 0) {
      const old = e.recent[i];
      // Keep what an earlier report knew and a later one may lack (the processes).
      e.recent[i] = {
        ...r,
        client: { ...r.client, process: r.client.process ?? old.client.process },
        server: { ...r.server, process: r.server.process ?? old.server.process },
      };
    } else {
      e.recent.unshift(r);
      if (e.recent.length > recentPerEdge) e.recent.length = recentPerEdge;
    }
    this.version++;
  }

  private countVerdict(e: EdgeInfo, verdict: string, by: number): void {
    switch (verdict) {
      case 'allow':
        e.verdicts.allow = Math.max(0, e.verdicts.allow + by);
        break;
      case 'learn':
        e.verdicts.learn = Math.max(0, e.verdicts.learn + by);
        break;
      case 'violate':
        e.verdicts.violate = Math.max(0, e.verdicts.violate + by);
        break;
      case 'deny':
        e.verdicts.deny = Math.max(0, e.verdicts.deny + by);
        break;
    }
  }

  /**
   * Folds in a violation event (the controller's aggregated "violation": client and
   * server ends, proto, port, app, verdict, count), marking its edge. The first flow of a
   * violation may be older than the flows the map was loaded with; the event still
   * colours its edge. An event already folded in with the same count changes nothing.
   */
  applyViolation(ev: VigilEvent): boolean {
    if (ev.type !== 'violation' || !ev.detail) return false;
    const d = ev.detail;
    const count = typeof d.count === 'number' ? d.count : 1;
    const seen = this.violations.get(ev.id) ?? 0;
    if (count <= seen) return false;
    this.violations.set(ev.id, count);
    const client = d.client as Endpoint | undefined;
    const server = d.server as Endpoint | undefined;
    if (!client || typeof client !== 'object' || !server || typeof server !== 'object' || !client.kind || !server.kind) {
      return false;
    }
    const proto = typeof d.proto === 'string' ? d.proto : '';
    const port = proto === 'icmp' || proto === 'icmpv6' ? 0 : typeof d.port === 'number' ? d.port : 0;
    const app = typeof d.app === 'string' ? d.app : '';
    const c = endpointNode(client);
    const s = endpointNode(server);
    for (const n of [c, s]) {
      if (n.group) this.addNode({ id: n.group, kind: 'group', label: n.group.slice('group:'.length) });
      this.addNode(n);
    }
    const e = this.edge(edgeKey(c.id, s.id, proto, port, app), c.id, s.id, proto, port, app);
    const t = time(typeof d.last_seen === 'string' ? d.last_seen : ev.time);
    e.lastSeen = Math.max(e.lastSeen, t);
    if (!e.firstSeen) e.firstSeen = time(typeof d.first_seen === 'string' ? d.first_seen : ev.time);
    const verdict = d.verdict === 'deny' ? 'deny' : 'violate';
    if ((verdict === 'deny' ? e.verdicts.deny : e.verdicts.violate) === 0) {
      this.countVerdict(e, verdict, 1);
    }
    this.version++;
    return true;
  }

  /** The display node of a node: its group unless that group is expanded. */
  displayOf(id: string, expanded: ReadonlySet<string>): string {
    const n = this.nodes.get(id);
    if (n?.kind === 'workload' && n.group && !expanded.has(n.group)) return n.group;
    return id;
  }
}

/**
 * portsCover reports whether a rule's ports (as the API writes them: "tcp/5432",
 * "tcp/8000-8100", "tcp/any", "tcp", "icmp", "any") cover a connection.
 */
export function portsCover(ports: string[], proto: string, port: number): boolean {
  for (const p of ports) {
    const t = p.trim().toLowerCase();
    if (t === 'any') return true;
    const [name, range] = t.split('/', 2);
    if (name !== proto) continue;
    if (range === undefined || range === 'any' || proto === 'icmp' || proto === 'icmpv6') return true;
    const [first, last] = range.split('-', 2).map(Number);
    if (port >= first && port <= (last ?? first)) return true;
  }
  return false;
}
