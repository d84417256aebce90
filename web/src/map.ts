// The network map: the model drawn with cytoscape.js, kept live from the flow and event
// streams, with filters and a details panel.
//
// Drawing cost is what limits a map of this size, not the model: with many edges the map
// switches to straight "haystack" edges without labels or arrows, hides edges while the
// view moves, and uses a concentric layout instead of the force-directed one. Live updates
// are coalesced (at most one redraw per updateInterval) and applied as a diff in one
// cytoscape batch, so an update touches only the elements that changed.

import cytoscape from 'cytoscape';
import { type Stream, get, stream } from './api';
import { formatAgo, formatBytes } from './data';
import { errorBox, fill, h, table } from './dom';
import { type EdgeInfo, GraphModel, type NodeInfo, policyName, portsCover } from './model';
import type { FlowEvent, FlowRecord, Graph, PolicyView, Rule, VigilEvent, Workload, WorkloadGroup } from './types';
import { type Filter, type View, type ViewEdge, buildView, edgeLabel, facets } from './view';

const updateInterval = 300; // ms between redraws of live updates
const resyncInterval = 30_000; // ms between graph snapshots
const workloadInterval = 5_000; // ms between workload listings
const largeEdges = 800; // past this, cheaper drawing

const verdictColours = {
  allowed: '#43a36b',
  violation: '#e53935',
  denied: '#8e24aa',
  unknown: '#8a9099',
};

function styles(large: boolean): cytoscape.StylesheetJson {
  return [
    {
      selector: 'node',
      style: {
        label: 'data(label)',
        'font-size': 11,
        color: '#d8dee9',
        'text-valign': 'bottom',
        'text-margin-y': 4,
        'min-zoomed-font-size': large ? 12 : 7,
        'background-color': '#5e81ac',
        width: 24,
        height: 24,
        'border-width': 0,
      },
    },
    { selector: 'node[kind="group"]', style: { shape: 'round-rectangle', 'background-color': '#4c7cbf', width: 34, height: 26 } },
    { selector: 'node[kind="workload"]', style: { 'background-color': '#81a1c1', width: 18, height: 18, 'font-size': 10 } },
    { selector: 'node[kind="host"]', style: { shape: 'hexagon', 'background-color': '#b48ead', width: 32, height: 32 } },
    { selector: 'node[kind="external"]', style: { shape: 'diamond', 'background-color': '#d08770' } },
    { selector: 'node[kind="internal"], node[kind="address"]', style: { shape: 'triangle', 'background-color': '#7b8394' } },
    {
      selector: ':parent',
      style: {
        'background-opacity': 0.08,
        'border-width': 1,
        'border-color': '#4c7cbf',
        'text-valign': 'top',
        'text-margin-y': -4,
        padding: '14px',
      },
    },
    {
      selector: 'edge',
      style: large
        ? { width: 1, 'curve-style': 'haystack', 'haystack-radius': 0, 'line-color': verdictColours.allowed, opacity: 0.55 }
        : {
            width: 'mapData(weight, 0, 12, 1.2, 5)',
            'curve-style': 'bezier',
            'line-color': verdictColours.allowed,
            'target-arrow-color': verdictColours.allowed,
            'target-arrow-shape': 'triangle',
            'arrow-scale': 0.8,
            label: 'data(label)',
            'font-size': 9,
            color: '#aab2bf',
            'text-rotation': 'autorotate',
            'text-background-color': '#1d2128',
            'text-background-opacity': 0.8,
            'text-background-padding': '1px',
            'min-zoomed-font-size': 9,
          },
    },
    { selector: 'edge[verdict="violation"]', style: { 'line-color': verdictColours.violation, 'target-arrow-color': verdictColours.violation, opacity: 1, width: large ? 2 : 'mapData(weight, 0, 12, 2, 6)' } },
    { selector: 'edge[verdict="denied"]', style: { 'line-color': verdictColours.denied, 'target-arrow-color': verdictColours.denied, 'line-style': 'dashed', opacity: 1 } },
    { selector: 'edge[verdict="unknown"]', style: { 'line-color': verdictColours.unknown, 'target-arrow-color': verdictColours.unknown } },
    { selector: 'node:selected', style: { 'border-width': 3, 'border-color': '#ebcb8b' } },
    { selector: 'edge:selected', style: { 'line-color': '#ebcb8b', 'target-arrow-color': '#ebcb8b', opacity: 1 } },
  ];
}

function nodeData(n: View['nodes'][number]): cytoscape.ElementDefinition {
  const label = n.kind === 'group' && !n.expanded && n.members > 1 ? `${n.label} (${n.members})` : n.label;
  return { group: 'nodes', data: { id: n.id, label, kind: n.kind, parent: n.parent } };
}

function edgeData(e: ViewEdge): cytoscape.ElementDefinition {
  return {
    group: 'edges',
    data: {
      id: e.id,
      source: e.source,
      target: e.target,
      label: `${edgeLabel(e)} ×${e.flows}`,
      verdict: e.verdict,
      weight: Math.log2(1 + e.bytes / 1024),
    },
  };
}

/** What must change in cytoscape to go from the drawn elements to a new view. */
function signature(d: cytoscape.ElementDefinition): string {
  const x = d.data;
  return `${x.label}|${x.kind ?? ''}|${x.parent ?? ''}|${x.verdict ?? ''}|${Math.round((x.weight ?? 0) * 4)}`;
}

export class MapPage {
  readonly el: HTMLElement;
  private readonly model = new GraphModel();
  private readonly expanded = new Set<string>();
  private filter: Filter = {};
  private cy?: cytoscape.Core;
  private drawn = new Map<string, string>(); // element id -> signature
  private drawnVersion = -1;
  private large = false;
  private streams: Stream[] = [];
  private timers: number[] = [];
  private pendingFlows: FlowEvent[] = [];
  private pendingEvents: VigilEvent[] = [];
  private flushTimer = 0;
  private firstRender = true;
  private selected?: { kind: 'node' | 'edge'; id: string };
  private policy?: PolicyView;

  private readonly canvas = h('div', { id: 'map', class: 'map-canvas', 'aria-label': 'network map' });
  private readonly details = h('aside', { class: 'details', 'aria-live': 'polite' });
  private readonly status = h('span', { class: 'map-status' });
  private readonly live = h('span', { class: 'live off', title: 'live updates' }, 'offline');
  private readonly groupSel = h('select', { 'aria-label': 'group', onchange: () => this.setFilter() });
  private readonly appSel = h('select', { 'aria-label': 'application', onchange: () => this.setFilter() });
  private readonly verdictSel = h(
    'select',
    { 'aria-label': 'verdict', onchange: () => this.setFilter() },
    h('option', { value: '' }, 'any verdict'),
    h('option', { value: 'allowed' }, 'learned or allowed'),
    h('option', { value: 'violation' }, 'violation'),
    h('option', { value: 'denied' }, 'denied'),
    h('option', { value: 'unknown' }, 'no verdict seen'),
  );
  private readonly windowSel = h(
    'select',
    { 'aria-label': 'time window', onchange: () => this.setFilter() },
    h('option', { value: '' }, 'all time'),
    h('option', { value: '300000' }, 'last 5 minutes'),
    h('option', { value: '3600000' }, 'last hour'),
    h('option', { value: '86400000' }, 'last 24 hours'),
  );

  constructor() {
    performance.mark('vigil:map-start');
    this.el = h(
      'section',
      { class: 'page map-page' },
      h(
        'div',
        { class: 'toolbar' },
        this.groupSel,
        this.appSel,
        this.verdictSel,
        this.windowSel,
        h('button', { type: 'button', onclick: () => this.relayout() }, 'Re-arrange'),
        h('button', { type: 'button', onclick: () => this.cy?.fit(undefined, 30) }, 'Fit'),
        h(
          'span',
          { class: 'legend' },
          h('i', { class: 'sw allowed' }),
          'learned/allowed ',
          h('i', { class: 'sw violation' }),
          'violation ',
          h('i', { class: 'sw denied' }),
          'denied ',
          h('i', { class: 'sw unknown' }),
          'no verdict seen',
        ),
        this.status,
        this.live,
      ),
      h('div', { class: 'map-body' }, this.canvas, this.details),
    );
    fill(this.details, h('p', { class: 'hint' }, 'Click a node or a connection for details; double-click a group to show its workloads.'));
  }

  /** Starts loading and following; call once the element is in the document. */
  async start(): Promise<void> {
    this.cy = cytoscape({
      container: this.canvas,
      style: styles(false),
      wheelSensitivity: 0.3,
      minZoom: 0.05,
      maxZoom: 4,
    });
    this.cy.on('tap', 'node', (e) => this.select('node', e.target.id()));
    this.cy.on('tap', 'edge', (e) => this.select('edge', e.target.id()));
    this.cy.on('dbltap', 'node[kind="group"]', (e) => this.toggle(e.target.id()));
    this.cy.on('tap', (e) => {
      if (e.target === this.cy) this.clearSelection();
    });

    this.streams.push(
      stream<FlowEvent>('/api/v1/flows/stream', 'flow', (ev) => this.queueFlow(ev), () => void this.resync(), (on) => this.setLive(on)),
      stream<VigilEvent>('/api/v1/events/stream?type=violation', 'event', (ev) => this.queueEvent(ev), () => {}, () => {}),
    );
    await this.resync();
    this.timers.push(
      window.setInterval(() => void this.resync(), resyncInterval),
      window.setInterval(() => void this.refreshWorkloads(), workloadInterval),
    );
  }

  stop(): void {
    for (const s of this.streams) s.close();
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.flushTimer);
    this.cy?.destroy();
  }

  private setLive(on: boolean): void {
    this.live.className = on ? 'live on' : 'live off';
    this.live.textContent = on ? 'live' : 'reconnecting';
  }

  /** Loads the graph, the recent flows, the violations and the workloads. */
  private async resync(): Promise<void> {
    try {
      const [graph, flows, workloads, violations] = await Promise.all([
        get<Graph>('/api/v1/graph'),
        get<FlowRecord[]>('/api/v1/flows?limit=5000'),
        get<Workload[]>('/api/v1/workloads'),
        get<VigilEvent[]>('/api/v1/events?type=violation&limit=1000').catch(() => [] as VigilEvent[]),
      ]);
      this.model.addWorkloads(workloads);
      this.model.loadGraph(graph);
      this.model.addFlows(flows, false);
      for (const v of violations) this.model.applyViolation(v);
      this.model.pruneWorkloads(workloads);
      this.render();
    } catch (err) {
      this.status.textContent = `could not load the map: ${(err as Error).message}`;
    }
  }

  private async refreshWorkloads(): Promise<void> {
    try {
      const workloads = await get<Workload[]>('/api/v1/workloads');
      this.model.addWorkloads(workloads);
      this.model.pruneWorkloads(workloads);
      this.render();
    } catch {
      // the next resync says what is wrong
    }
  }

  private queueFlow(ev: FlowEvent): void {
    this.pendingFlows.push(ev);
    this.scheduleFlush();
  }

  private queueEvent(ev: VigilEvent): void {
    this.pendingEvents.push(ev);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = window.setTimeout(() => {
      this.flushTimer = 0;
      const start = performance.now();
      const flows = this.pendingFlows;
      const events = this.pendingEvents;
      this.pendingFlows = [];
      this.pendingEvents = [];
      for (const ev of flows) this.model.applyFlowEvent(ev);
      for (const ev of events) this.model.applyViolation(ev);
      this.render();
      // The batch is on screen at the next frame.
      requestAnimationFrame(() => {
        performance.measure('vigil:map-update', { start, end: performance.now(), detail: { flows: flows.length, events: events.length } });
      });
    }, updateInterval);
  }

  private setFilter(): void {
    this.filter = {
      group: this.groupSel.value || undefined,
      app: this.appSel.value || undefined,
      verdict: (this.verdictSel.value || undefined) as Filter['verdict'],
      windowMs: Number(this.windowSel.value) || undefined,
    };
    this.drawnVersion = -1;
    this.render();
  }

  private toggle(group: string): void {
    if (this.expanded.has(group)) this.expanded.delete(group);
    else this.expanded.add(group);
    this.drawnVersion = -1;
    this.render();
    if (this.selected?.id === group) void this.showDetails();
  }

  private relayout(): void {
    this.layout(this.cy?.elements() ?? undefined, true);
  }

  private layout(eles: cytoscape.CollectionReturnValue | undefined, fit: boolean, randomize = true): void {
    if (!this.cy || !eles || eles.empty()) return;
    const nodes = this.cy.nodes().length;
    const opts: cytoscape.LayoutOptions =
      nodes <= 150 && !this.large
        ? ({ name: 'cose', animate: false, randomize, fit, padding: 30, nodeRepulsion: () => 9000, idealEdgeLength: () => 90, numIter: 1500 } as cytoscape.LayoutOptions)
        : ({
            name: 'concentric',
            animate: false,
            fit,
            padding: 30,
            minNodeSpacing: 6,
            concentric: (n: cytoscape.NodeSingular) => n.degree(false),
            levelWidth: () => 4,
          } as cytoscape.LayoutOptions);
    const layout = eles.layout(opts);
    if (fit) {
      // A handful of nodes fitted to the canvas would be drawn huge.
      layout.one('layoutstop', () => {
        if (this.cy && this.cy.zoom() > 1.4) {
          this.cy.zoom(1.4);
          this.cy.center();
        }
      });
    }
    layout.run();
  }

  /** Draws the current view as a diff against what is drawn. */
  private render(): void {
    const cy = this.cy;
    if (!cy) return;
    this.refreshFacets();
    if (this.model.version === this.drawnVersion) return;
    this.drawnVersion = this.model.version;
    const view = buildView(this.model, this.expanded, this.filter, Date.now());
    const large = view.edges.length > largeEdges;
    if (large !== this.large) {
      this.large = large;
      cy.style(styles(large));
    }
    const want = new Map<string, cytoscape.ElementDefinition>();
    for (const n of view.nodes) want.set(n.id, nodeData(n));
    for (const e of view.edges) want.set(e.id, edgeData(e));

    const added: cytoscape.ElementDefinition[] = [];
    let reparented = false;
    cy.batch(() => {
      for (const [id] of this.drawn) {
        if (!want.has(id)) {
          cy.getElementById(id).remove();
          this.drawn.delete(id);
        }
      }
      for (const [id, d] of want) {
        const sig = signature(d);
        const old = this.drawn.get(id);
        if (old === undefined) {
          added.push(d);
        } else if (old !== sig) {
          const el = cy.getElementById(id);
          if (d.group === 'nodes' && (el.data('parent') ?? undefined) !== d.data.parent) {
            // A node moving in or out of a compound is re-created.
            el.remove();
            added.push(d);
            reparented = true;
          } else {
            el.data(d.data);
          }
        }
        this.drawn.set(id, sig);
      }
      // Nodes before edges, parents before children.
      added.sort((a, b) => (a.group === b.group ? Number(Boolean(a.data.parent)) - Number(Boolean(b.data.parent)) : a.group === 'nodes' ? -1 : 1));
      const eles = cy.add(added);
      if (!this.firstRender && this.large) this.placeNew(eles.nodes());
    });
    if (this.firstRender && cy.nodes().length > 0) {
      this.firstRender = false;
      this.layout(cy.elements(), true);
      requestAnimationFrame(() => performance.measure('vigil:map-first-render', { start: 0, end: performance.now(), detail: { nodes: view.nodes.length, edges: view.edges.length } }));
    } else if (added.some((d) => d.group === 'nodes') && !this.large && cy.nodes().length <= 150) {
      // A small map is laid out again from where its nodes are: new nodes find their place.
      this.layout(cy.elements(), true, false);
    } else if (reparented || added.filter((d) => d.group === 'nodes').length > 30) {
      this.layout(cy.elements(), false);
    }
    const violations = view.edges.filter((e) => e.verdict === 'violation' || e.verdict === 'denied').length;
    this.status.textContent = `${view.nodes.length} nodes · ${view.edges.length} connections · ${violations} violating`;
    this.canvas.dataset.nodes = String(view.nodes.length);
    this.canvas.dataset.edges = String(view.edges.length);
    if (this.selected) void this.showDetails(false);
  }

  /** Puts new nodes next to a neighbour already placed, so the map does not jump. */
  private placeNew(nodes: cytoscape.NodeCollection): void {
    const cy = this.cy!;
    const box = cy.elements().not(nodes).boundingBox();
    nodes.forEach((n) => {
      if (n.isChild() && n.parent().nonempty()) {
        const p = n.parent().first();
        const pp = p.position();
        n.position({ x: pp.x + (Math.random() - 0.5) * 60, y: pp.y + (Math.random() - 0.5) * 60 });
        return;
      }
      const other = n.neighborhood('node').not(nodes).nodes().first();
      if (other.nonempty()) {
        const p = other.position();
        n.position({ x: p.x + (Math.random() - 0.5) * 120, y: p.y + (Math.random() - 0.5) * 120 });
      } else if (Number.isFinite(box.x2)) {
        n.position({ x: box.x2 + 60, y: box.y1 + Math.random() * Math.max(box.h, 100) });
      }
    });
  }

  private refreshFacets(): void {
    const { apps, groups } = facets(this.model);
    const sync = (sel: HTMLSelectElement, all: string, values: string[]) => {
      const cur = sel.value;
      const have = [...sel.options].map((o) => o.value).join('\n');
      const next = ['', ...values].join('\n');
      if (have === next) return;
      fill(sel, h('option', { value: '' }, all), values.map((v) => h('option', { value: v }, v)));
      sel.value = values.includes(cur) ? cur : '';
    };
    sync(this.groupSel, 'all groups', groups);
    sync(this.appSel, 'all applications', apps);
  }

  private clearSelection(): void {
    this.selected = undefined;
    fill(this.details, h('p', { class: 'hint' }, 'Click a node or a connection for details; double-click a group to show its workloads.'));
  }

  private select(kind: 'node' | 'edge', id: string): void {
    this.selected = { kind, id };
    void this.showDetails();
  }

  private detailsSeq = 0;

  /** Fills the details panel of the selection; fetch says whether to ask the API again. */
  private async showDetails(fetchMore = true): Promise<void> {
    const sel = this.selected;
    if (!sel) return;
    if (!fetchMore && this.details.dataset.for === sel.id) {
      return; // live updates do not re-fetch; the panel's flows list is refreshed on click
    }
    const seq = ++this.detailsSeq;
    this.details.dataset.for = sel.id;
    try {
      if (fetchMore || !this.policy) this.policy = await get<PolicyView>('/api/v1/policy').catch(() => undefined);
      const content = sel.kind === 'node' ? await this.nodeDetails(sel.id) : this.edgeDetails(sel.id);
      if (seq === this.detailsSeq) fill(this.details, content);
    } catch (err) {
      if (seq === this.detailsSeq) fill(this.details, errorBox((err as Error).message));
    }
  }

  private rulesFor(pred: (r: Rule) => boolean): HTMLElement {
    const rules = (this.policy?.rules ?? []).filter(pred);
    if (rules.length === 0) return h('p', { class: 'muted' }, 'No rule names it.');
    return table(
      ['from', 'to', 'ports', 'apps', 'action', 'origin', 'hits'],
      rules.map((r) => [r.from, r.to, r.ports.join(', '), (r.apps ?? []).join(', ') || 'any', r.action, r.origin, String(r.hits)]),
      'compact',
    );
  }

  private modeOf(group: string): string {
    const p = this.policy;
    if (!p) return '?';
    return p.groups.find((g) => g.name === group)?.mode ?? `${p.default_mode} (default)`;
  }

  private async nodeDetails(id: string): Promise<HTMLElement> {
    const n = this.model.nodes.get(id);
    if (!n) return h('p', {}, 'This node is no longer on the map.');
    const name = policyName(n);
    const parts: (HTMLElement | string)[] = [h('h3', {}, n.label), h('p', { class: 'muted' }, `${n.kind} · policy name ${name}`)];
    if (n.kind === 'group') {
      const g = await get<WorkloadGroup>(`/api/v1/groups/${encodeURIComponent(name)}`).catch(() => undefined);
      parts.push(
        h('p', {}, 'Mode: ', h('b', {}, this.modeOf(name)), ' ', h('a', { href: '#/policy' }, 'change')),
        h('button', { type: 'button', onclick: () => this.toggle(id) }, this.expanded.has(id) ? 'Collapse' : 'Show workloads'),
        h('h4', {}, 'Members'),
        g && g.members.length > 0 ? h('ul', {}, g.members.map((m) => h('li', {}, m.name, ' ', h('code', {}, m.id.slice(0, 12))))) : h('p', { class: 'muted' }, 'No running member.'),
      );
      const flows = await get<FlowRecord[]>(`/api/v1/flows?group=${encodeURIComponent(name)}&limit=20`);
      parts.push(h('h4', {}, 'Rules that apply'), this.rulesFor((r) => r.from === name || r.to === name), h('h4', {}, 'Recent flows'), flowTable(flows));
    } else if (n.kind === 'workload') {
      const wid = id.slice('workload:'.length);
      const [w, flows] = await Promise.all([
        get<Workload>(`/api/v1/workloads/${encodeURIComponent(wid)}`).catch(() => undefined),
        get<FlowRecord[]>(`/api/v1/flows?workload=${encodeURIComponent(wid)}&limit=20`),
      ]);
      if (w) {
        parts.push(
          h('dl', {}, h('dt', {}, 'image'), h('dd', {}, w.image), h('dt', {}, 'group'), h('dd', {}, w.group), h('dt', {}, 'addresses'), h('dd', {}, (w.ips ?? []).join(', ') || '—'), h('dt', {}, 'id'), h('dd', {}, h('code', {}, w.id.slice(0, 12)))),
        );
      } else {
        parts.push(h('p', { class: 'muted' }, 'The container is no longer running.'));
      }
      parts.push(h('p', {}, 'Mode: ', h('b', {}, this.modeOf(name))), h('h4', {}, 'Rules that apply'), this.rulesFor((r) => r.from === name || r.to === name), h('h4', {}, 'Recent flows'), flowTable(flows));
    } else {
      const recent = this.recentOf([...this.model.edges.values()].filter((e) => e.source === id || e.target === id));
      parts.push(
        h('h4', {}, 'Rules that apply'),
        this.rulesFor((r) => r.from === name || r.to === name || (n.kind === 'external' && (r.from === 'external' || r.to === 'external'))),
        h('h4', {}, 'Recent flows'),
        flowTable(recent),
      );
    }
    return h('div', {}, parts);
  }

  private recentOf(edges: EdgeInfo[]): FlowRecord[] {
    const all = edges.flatMap((e) => e.recent);
    all.sort((a, b) => Date.parse(b.last_seen) - Date.parse(a.last_seen));
    return all.slice(0, 20);
  }

  private edgeDetails(id: string): HTMLElement {
    const view = buildView(this.model, this.expanded, this.filter, Date.now());
    const e = view.edges.find((x) => x.id === id);
    if (!e) return h('p', {}, 'This connection is no longer on the map.');
    const src = this.model.nodes.get(e.source);
    const dst = this.model.nodes.get(e.target);
    const from = src ? policyName(src) : '';
    const to = dst ? policyName(dst) : '';
    const edges = e.keys.map((k) => this.model.edges.get(k)).filter((x): x is EdgeInfo => Boolean(x));
    const v = { allow: 0, learn: 0, violate: 0, deny: 0 };
    for (const x of edges) {
      v.allow += x.verdicts.allow;
      v.learn += x.verdicts.learn;
      v.violate += x.verdicts.violate;
      v.deny += x.verdicts.deny;
    }
    return h(
      'div',
      {},
      h('h3', {}, `${src?.label ?? e.source} → ${dst?.label ?? e.target}`),
      h('p', {}, h('span', { class: `badge ${e.verdict}` }, e.verdict), ' ', edgeLabel(e)),
      h(
        'dl',
        {},
        h('dt', {}, 'flows'),
        h('dd', {}, String(e.flows)),
        h('dt', {}, 'bytes'),
        h('dd', {}, formatBytes(e.bytes)),
        h('dt', {}, 'last seen'),
        h('dd', {}, formatAgo(e.lastSeen, Date.now())),
        h('dt', {}, 'verdicts seen'),
        h('dd', {}, `${v.allow} allowed, ${v.learn} learned, ${v.violate} violations, ${v.deny} denied`),
      ),
      h('h4', {}, 'Rules that apply'),
      this.rulesFor((r) => r.from === from && r.to === to && portsCover(r.ports, e.proto, e.port) && (!r.apps?.length || r.apps.includes(e.app))),
      h('h4', {}, 'Recent flows'),
      flowTable(this.recentOf(edges)),
    );
  }
}

function procText(p: FlowRecord['client']['process']): string {
  return p ? `${p.comm}[${p.pid}]` : '';
}

function endText(e: FlowRecord['client']): string {
  return e.name || e.ip;
}

/** Recent flows with their processes. */
export function flowTable(flows: FlowRecord[]): HTMLElement {
  if (flows.length === 0) return h('p', { class: 'muted' }, 'No recent flow.');
  const now = Date.now();
  return table(
    ['client', 'process', 'server', 'process', 'app', 'bytes', 'verdict', 'seen'],
    flows.map((f) => [
      endText(f.client),
      procText(f.client.process),
      `${endText(f.server)}:${f.server.port}`,
      procText(f.server.process),
      f.app || f.proto,
      formatBytes(f.bytes),
      h('span', { class: `badge ${f.verdict ?? ''}` }, f.verdict ?? ''),
      formatAgo(f.last_seen, now),
    ]),
    'compact',
  );
}

export type { NodeInfo };
