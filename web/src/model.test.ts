import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphModel, edgeKey, endpointNode, policyName, verdictOf } from './model';
import type { Endpoint, FlowRecord, Graph, VigilEvent, Workload } from './types';
import { buildView, edgeLabel, facets } from './view';

const web1: Endpoint = { ip: '172.18.0.2', port: 40000, kind: 'workload', workload: 'aaa1', name: 'web-1', group: 'vigil.web' };
const web2: Endpoint = { ip: '172.18.0.3', port: 40001, kind: 'workload', workload: 'aaa2', name: 'web-2', group: 'vigil.web' };
const db: Endpoint = { ip: '172.18.0.4', port: 5432, kind: 'workload', workload: 'bbb1', name: 'db-1', group: 'vigil.db' };
const api: Endpoint = { ip: '93.184.216.34', port: 443, kind: 'external', name: 'api.example.com' };

let nextID = 1;
function flow(client: Endpoint, server: Endpoint, over: Partial<FlowRecord> = {}): FlowRecord {
  return {
    id: nextID++,
    proto: 'tcp',
    client,
    server,
    app: 'postgres',
    bytes: 100,
    packets: 2,
    first_seen: '2025-01-01T10:00:00Z',
    last_seen: '2025-01-01T10:00:01Z',
    state: 'established',
    verdict: 'learn',
    ...over,
  };
}

test('endpoint nodes match the controller graph ids', () => {
  assert.deepEqual(endpointNode(web1), { id: 'workload:aaa1', kind: 'workload', label: 'web-1', group: 'group:vigil.web' });
  assert.equal(endpointNode(api).id, 'external:api.example.com');
  assert.equal(endpointNode({ ip: '1.2.3.4', port: 80, kind: 'external' }).id, 'external:1.2.3.4');
  assert.equal(endpointNode({ ip: '10.0.0.9', port: 80, kind: 'internal' }).id, 'internal:10.0.0.9');
  assert.equal(endpointNode({ ip: '172.17.0.1', port: 80, kind: 'host' }).id, 'host');
});

test('policy names of nodes', () => {
  const m = new GraphModel();
  m.addFlows([flow(web1, api, { app: 'tls' })], true);
  assert.equal(policyName(m.nodes.get('group:vigil.web')!), 'vigil.web');
  assert.equal(policyName(m.nodes.get('workload:aaa1')!), 'vigil.web');
  assert.equal(policyName(m.nodes.get('external:api.example.com')!), 'external:api.example.com');
  assert.equal(policyName({ id: 'external:1.2.3.4', kind: 'external', label: '1.2.3.4' }), 'external');
  assert.equal(policyName({ id: 'external:2001:db8::1', kind: 'external', label: '2001:db8::1' }), 'external');
  assert.equal(policyName({ id: 'host', kind: 'host', label: 'h' }), 'host');
});

test('a snapshot, then stream updates, count each flow once and bytes as they grow', () => {
  const m = new GraphModel();
  const g: Graph = {
    nodes: [
      { id: 'group:vigil.web', kind: 'group', label: 'vigil.web' },
      { id: 'workload:aaa1', kind: 'workload', label: 'web-1', group: 'group:vigil.web' },
      { id: 'group:vigil.db', kind: 'group', label: 'vigil.db' },
      { id: 'workload:bbb1', kind: 'workload', label: 'db-1', group: 'group:vigil.db' },
    ],
    edges: [],
    workload_edges: [
      { source: 'workload:aaa1', target: 'workload:bbb1', proto: 'tcp', port: 5432, app: 'postgres', flows: 1, bytes: 100, first_seen: '2025-01-01T10:00:00Z', last_seen: '2025-01-01T10:00:01Z' },
    ],
    dropped_edges: 0,
  };
  const active = flow(web1, db);
  m.loadGraph(g);
  m.addFlows([active], false); // the snapshot counted it already
  const key = edgeKey('workload:aaa1', 'workload:bbb1', 'tcp', 5432, 'postgres');
  assert.equal(m.edges.get(key)!.flows, 1);
  assert.equal(m.edges.get(key)!.bytes, 100);

  m.applyFlowEvent({ type: 'update', flow: { ...active, bytes: 250 } });
  m.applyFlowEvent({ type: 'end', flow: { ...active, bytes: 300, state: 'closed' } });
  m.applyFlowEvent({ type: 'end', flow: { ...active, bytes: 300, state: 'closed' } }); // a duplicate
  assert.equal(m.edges.get(key)!.flows, 1);
  assert.equal(m.edges.get(key)!.bytes, 300);

  const second = flow(web2, db, { bytes: 40 });
  m.applyFlowEvent({ type: 'start', flow: second });
  const key2 = edgeKey('workload:aaa2', 'workload:bbb1', 'tcp', 5432, 'postgres');
  assert.equal(m.edges.get(key2)!.flows, 1);
  assert.equal(m.edges.get(key2)!.bytes, 40);
  assert.equal(m.edges.get(key2)!.verdicts.learn, 1);
  assert.equal(m.nodes.get('workload:aaa2')!.group, 'group:vigil.web');
});

test('a flow whose application is identified after its start moves edge', () => {
  const m = new GraphModel();
  const f = flow(web1, db, { app: '', bytes: 10 });
  m.applyFlowEvent({ type: 'start', flow: f });
  m.applyFlowEvent({ type: 'update', flow: { ...f, app: 'postgres', bytes: 30 } });
  assert.equal(m.edges.has(edgeKey('workload:aaa1', 'workload:bbb1', 'tcp', 5432, '')), false);
  const e = m.edges.get(edgeKey('workload:aaa1', 'workload:bbb1', 'tcp', 5432, 'postgres'))!;
  assert.equal(e.flows, 1);
  assert.equal(e.bytes, 30);
  assert.equal(e.verdicts.learn, 1);
  assert.equal(e.recent.length, 1);
});

test('verdicts colour edges with the worst', () => {
  const m = new GraphModel();
  m.addFlows([flow(web1, db, { verdict: 'allow' }), flow(web2, db, { verdict: 'violate' })], true);
  const v = buildView(m, new Set(), {}, Date.now());
  assert.equal(v.edges.length, 1, 'both web workloads fold into one group edge');
  assert.equal(v.edges[0].verdict, 'violation');
  assert.equal(v.edges[0].flows, 2);
  assert.equal(verdictOf({ allow: 0, learn: 0, violate: 0, deny: 0 }), 'unknown');
  assert.equal(verdictOf({ allow: 3, learn: 0, violate: 1, deny: 1 }), 'denied');
  assert.equal(edgeLabel(v.edges[0]), 'postgres tcp/5432');
  assert.equal(edgeLabel({ proto: 'icmp', port: 0, app: '' }), 'icmp');
});

test('processes from an earlier report are kept when a later one lacks them', () => {
  const m = new GraphModel();
  const f = flow(web1, db, { client: { ...web1, process: { pid: 7, comm: 'psql', exe: '/usr/bin/psql', uid: 0 } } });
  m.applyFlowEvent({ type: 'start', flow: f });
  m.applyFlowEvent({ type: 'update', flow: { ...f, client: web1, bytes: 500 } });
  const e = m.edges.get(edgeKey('workload:aaa1', 'workload:bbb1', 'tcp', 5432, 'postgres'))!;
  assert.equal(e.recent[0].client.process?.comm, 'psql');
  assert.equal(e.recent[0].bytes, 500);
});

test('a violation event colours its edge, once per count', () => {
  const m = new GraphModel();
  m.addFlows([flow(web1, db, { verdict: 'allow' })], true);
  const ev: VigilEvent = {
    id: 9,
    time: '2025-01-01T10:05:00Z',
    type: 'violation',
    severity: 'warning',
    summary: 'web-1 -> db-1',
    detail: { from: 'vigil.intruder', to: 'vigil.db', proto: 'tcp', port: 5432, app: 'postgres', verdict: 'violate', count: 1,
      client: { ip: '172.18.0.9', port: 1234, kind: 'workload', workload: 'ccc1', name: 'intruder', group: 'vigil.intruder' }, server: db },
  };
  assert.equal(m.applyViolation(ev), true);
  assert.equal(m.applyViolation(ev), false, 'the same count again changes nothing');
  const e = m.edges.get(edgeKey('workload:ccc1', 'workload:bbb1', 'tcp', 5432, 'postgres'))!;
  assert.equal(verdictOf(e.verdicts), 'violation');
  const v = buildView(m, new Set(), { verdict: 'violation' }, Date.parse('2025-01-01T10:06:00Z'));
  assert.deepEqual(v.edges.map((x) => [x.source, x.target]), [['group:vigil.intruder', 'group:vigil.db']]);
  assert.equal(m.applyViolation({ ...ev, id: 10, type: 'audit.changed' }), false);
  assert.equal(m.applyViolation({ ...ev, id: 11, detail: { count: 1 } }), false, 'no ends: nothing to place');
});

test('expanding a group shows its workloads inside it', () => {
  const m = new GraphModel();
  m.addFlows([flow(web1, db), flow(web2, db)], true);
  const v = buildView(m, new Set(['group:vigil.web']), {}, Date.now());
  const ids = v.nodes.map((n) => n.id).sort();
  assert.deepEqual(ids, ['group:vigil.db', 'group:vigil.web', 'workload:aaa1', 'workload:aaa2']);
  assert.equal(v.nodes.find((n) => n.id === 'workload:aaa1')!.parent, 'group:vigil.web');
  assert.equal(v.nodes.find((n) => n.id === 'group:vigil.web')!.expanded, true);
  assert.equal(v.edges.length, 2);
  assert.deepEqual(v.edges.map((e) => e.target), ['group:vigil.db', 'group:vigil.db']);
});

test('filters: group, app, verdict, time window', () => {
  const m = new GraphModel();
  const now = Date.parse('2025-01-01T12:00:00Z');
  m.addFlows(
    [
      flow(web1, db, { last_seen: '2025-01-01T11:59:00Z' }),
      flow(web1, api, { app: 'tls', last_seen: '2025-01-01T08:00:00Z', verdict: 'deny' }),
    ],
    true,
  );
  m.addWorkloads([{ id: 'zzz', name: 'idle', kind: 'container', image: 'x', group: 'vigil.idle', labels: null, state: 'running', pid: 1, ips: null, privileged: false, user: '' } as Workload]);
  const all = buildView(m, new Set(), {}, now);
  assert.equal(all.edges.length, 2);
  assert.ok(all.nodes.some((n) => n.id === 'group:vigil.idle'), 'a group without traffic is shown unfiltered');
  assert.equal(all.nodes.find((n) => n.id === 'group:vigil.web')!.members, 1);

  assert.deepEqual(buildView(m, new Set(), { app: 'tls' }, now).edges.map((e) => e.target), ['external:api.example.com']);
  assert.deepEqual(buildView(m, new Set(), { verdict: 'denied' }, now).edges.map((e) => e.app), ['tls']);
  const recent = buildView(m, new Set(), { windowMs: 3600_000 }, now);
  assert.deepEqual(recent.edges.map((e) => e.app), ['postgres']);
  assert.deepEqual(recent.nodes.map((n) => n.id).sort(), ['group:vigil.db', 'group:vigil.web']);
  const byGroup = buildView(m, new Set(), { group: 'vigil.db' }, now);
  assert.deepEqual(byGroup.edges.map((e) => e.app), ['postgres']);
  const idle = buildView(m, new Set(), { group: 'vigil.idle' }, now);
  assert.deepEqual(idle.nodes.map((n) => n.id), ['group:vigil.idle'], 'the filtered group is shown even without edges');
  assert.deepEqual(facets(m), { apps: ['postgres', 'tls'], groups: ['vigil.db', 'vigil.idle', 'vigil.web'] });
});

test('workloads that are gone leave unless they carry edges', () => {
  const m = new GraphModel();
  const w = (id: string, group: string) => ({ id, name: id, kind: 'container', image: 'x', group, labels: null, state: 'running', pid: 1, ips: null, privileged: false, user: '' }) as Workload;
  m.addWorkloads([w('aaa1', 'vigil.web'), w('quiet', 'vigil.web')]);
  m.addFlows([flow(web1, db)], true);
  m.pruneWorkloads([]);
  assert.ok(m.nodes.has('workload:aaa1'));
  assert.ok(!m.nodes.has('workload:quiet'));
});

test('500 nodes and 5000 edges fold and filter quickly', () => {
  const m = new GraphModel();
  const flows: FlowRecord[] = [];
  for (let i = 0; i < 5000; i++) {
    const c = i % 250;
    const s = 250 + ((i * 7) % 250);
    flows.push(
      flow(
        { ip: `10.0.${c >> 8}.${c & 255}`, port: 30000 + i, kind: 'workload', workload: `c${c}`, name: `c${c}`, group: `g${c % 50}` },
        { ip: `10.1.${s >> 8}.${s & 255}`, port: 1000 + i, kind: 'workload', workload: `s${s}`, name: `s${s}`, group: `g${50 + (s % 50)}` },
      ),
    );
  }
  const t0 = performance.now();
  m.addFlows(flows, true);
  const v = buildView(m, new Set(['group:g1', 'group:g60']), {}, Date.now());
  const ms = performance.now() - t0;
  assert.ok(m.edges.size === 5000, `${m.edges.size} model edges`);
  assert.ok(v.nodes.length > 100);
  assert.ok(ms < 1000, `model and view of 5000 flows took ${ms} ms`);
});

test('rule ports cover connections', async () => {
  const { portsCover } = await import('./model');
  assert.equal(portsCover(['tcp/5432'], 'tcp', 5432), true);
  assert.equal(portsCover(['tcp/5432'], 'udp', 5432), false);
  assert.equal(portsCover(['tcp/8000-8100'], 'tcp', 8080), true);
  assert.equal(portsCover(['tcp/8000-8100'], 'tcp', 8101), false);
  assert.equal(portsCover(['udp/53', 'tcp/any'], 'tcp', 1), true);
  assert.equal(portsCover(['any'], 'icmp', 0), true);
  assert.equal(portsCover(['icmp'], 'icmp', 0), true);
  assert.equal(portsCover([], 'tcp', 80), false);
});
