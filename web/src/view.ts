// What the map shows: the model folded to groups (unless expanded) and filtered.

import { type EdgeInfo, type GraphModel, type NodeInfo, type Verdict, verdictOf } from './model';

export interface Filter {
  /** Only what touches this group (its name, without the "group:" prefix). */
  group?: string;
  app?: string;
  verdict?: Verdict | '';
  /** Only edges seen within this many milliseconds of now. */
  windowMs?: number;
}

export interface ViewNode {
  id: string;
  kind: NodeInfo['kind'];
  label: string;
  /** The compound parent: the group of a workload shown inside its expanded group. */
  parent?: string;
  /** Members of a collapsed group, for its label. */
  members: number;
  /** Whether the node is an expanded group. */
  expanded: boolean;
}

export interface ViewEdge {
  id: string;
  source: string;
  target: string;
  proto: string;
  port: number;
  app: string;
  flows: number;
  bytes: number;
  lastSeen: number;
  verdict: Verdict;
  /** The model edges folded into this one. */
  keys: string[];
}

export interface View {
  nodes: ViewNode[];
  edges: ViewEdge[];
}

export function edgeLabel(e: { proto: string; port: number; app: string }): string {
  const port = e.port === 0 ? e.proto : `${e.proto}/${e.port}`;
  return e.app ? `${e.app} ${port}` : port;
}

const verdictRank: Record<Verdict, number> = { unknown: 0, allowed: 1, violation: 2, denied: 3 };

/** The verdict of several edges shown as one: the worst. */
export function worse(a: Verdict, b: Verdict): Verdict {
  return verdictRank[a] >= verdictRank[b] ? a : b;
}

function groupOf(model: GraphModel, id: string): string | undefined {
  const n = model.nodes.get(id);
  if (!n) return undefined;
  if (n.kind === 'group') return n.id;
  if (n.kind === 'workload') return n.group;
  return undefined;
}

function edgeMatches(model: GraphModel, e: EdgeInfo, f: Filter, now: number): boolean {
  if (f.app && e.app !== f.app) return false;
  if (f.verdict && verdictOf(e.verdicts) !== f.verdict) return false;
  if (f.windowMs && e.lastSeen < now - f.windowMs) return false;
  if (f.group) {
    const g = 'group:' + f.group;
    if (groupOf(model, e.source) !== g && groupOf(model, e.target) !== g) return false;
  }
  return true;
}

/**
 * buildView folds and filters the model. Edges between the same display nodes with the
 * same protocol, port and application become one, with their counts summed and the
 * worst verdict. Without filters every node is shown, with or without edges, so that
 * containers that have not talked yet are on the map; with a filter, only the nodes of
 * the edges that pass it (and the filtered group itself).
 */
export function buildView(model: GraphModel, expanded: ReadonlySet<string>, f: Filter, now: number): View {
  const filtered = Boolean(f.group || f.app || f.verdict || f.windowMs);
  const edges = new Map<string, ViewEdge>();
  const used = new Set<string>();
  for (const e of model.edges.values()) {
    if (!edgeMatches(model, e, f, now)) continue;
    const source = model.displayOf(e.source, expanded);
    const target = model.displayOf(e.target, expanded);
    const id = `${source}|${target}|${e.proto}|${e.port}|${e.app}`;
    let v = edges.get(id);
    const verdict = verdictOf(e.verdicts);
    if (!v) {
      v = { id, source, target, proto: e.proto, port: e.port, app: e.app, flows: 0, bytes: 0, lastSeen: 0, verdict, keys: [] };
      edges.set(id, v);
    } else {
      v.verdict = worse(v.verdict, verdict);
    }
    v.flows += e.flows;
    v.bytes += e.bytes;
    v.lastSeen = Math.max(v.lastSeen, e.lastSeen);
    v.keys.push(e.key);
    used.add(source);
    used.add(target);
  }
  if (f.group) used.add('group:' + f.group);

  const members = new Map<string, number>();
  for (const n of model.nodes.values()) {
    if (n.kind === 'workload' && n.group) members.set(n.group, (members.get(n.group) ?? 0) + 1);
  }
  const nodes = new Map<string, ViewNode>();
  const add = (id: string) => {
    if (nodes.has(id)) return;
    const n = model.nodes.get(id);
    if (!n) return;
    if (n.kind === 'workload') {
      const g = n.group;
      if (g && expanded.has(g)) {
        add(g);
        nodes.set(id, { id, kind: n.kind, label: n.label, parent: g, members: 0, expanded: false });
        return;
      }
      if (g) add(g);
      return;
    }
    nodes.set(id, { id, kind: n.kind, label: n.label, members: members.get(id) ?? 0, expanded: n.kind === 'group' && expanded.has(id) });
  };
  if (filtered) {
    for (const id of used) add(id);
    // An expanded group shows all its members, talkers or not.
    for (const n of model.nodes.values()) {
      if (n.kind === 'workload' && n.group && expanded.has(n.group) && nodes.has(n.group)) add(n.id);
    }
  } else {
    for (const id of model.nodes.keys()) add(id);
  }
  // Edges whose ends are not shown (a node the model lacks) cannot be drawn.
  const out: ViewEdge[] = [];
  for (const e of edges.values()) {
    if (nodes.has(e.source) && nodes.has(e.target)) out.push(e);
  }
  return { nodes: [...nodes.values()], edges: out };
}

/** The apps and groups present in the model, sorted, for the filter menus. */
export function facets(model: GraphModel): { apps: string[]; groups: string[] } {
  const apps = new Set<string>();
  for (const e of model.edges.values()) if (e.app) apps.add(e.app);
  const groups: string[] = [];
  for (const n of model.nodes.values()) if (n.kind === 'group') groups.push(n.label);
  return { apps: [...apps].sort(), groups: groups.sort() };
}
