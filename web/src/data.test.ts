import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auditSections, filterEvents, formatAgo, formatBytes, mergeEvents, normalizeScan, severityCounts, sortFindings } from './data';
import type { AuditResult, Finding, VigilEvent } from './types';

const ev = (id: number, type: string, over: Partial<VigilEvent> = {}): VigilEvent => ({
  id,
  time: '2025-01-01T10:00:00Z',
  type,
  severity: 'warning',
  summary: `event ${id}`,
  ...over,
});

test('stream events merge into the list: newest first, updates replace, bounded', () => {
  let list = [ev(3, 'violation'), ev(1, 'audit.changed')];
  list = mergeEvents(list, [ev(4, 'violation'), ev(3, 'violation', { detail: { count: 5 } })], 10);
  assert.deepEqual(list.map((e) => e.id), [4, 3, 1]);
  assert.equal(list[1].detail?.count, 5);
  list = mergeEvents(list, [ev(5, 'x'), ev(6, 'x')], 3);
  assert.deepEqual(list.map((e) => e.id), [6, 5, 4]);
  assert.equal(mergeEvents(list, [], 3), list);
});

test('event filters', () => {
  const list = [
    ev(1, 'violation', { summary: 'web -> db', detail: { port: 5432 } }),
    ev(2, 'audit.changed', { severity: 'info' }),
    ev(3, 'process.exec', { severity: 'critical' }),
  ];
  assert.deepEqual(filterEvents(list, { type: 'violation' }).map((e) => e.id), [1]);
  assert.deepEqual(filterEvents(list, { type: 'audit' }).map((e) => e.id), [2], 'a type prefix selects its subtypes');
  assert.deepEqual(filterEvents(list, { severity: 'critical' }).map((e) => e.id), [3]);
  assert.deepEqual(filterEvents(list, { text: 'WEB' }).map((e) => e.id), [1]);
  assert.deepEqual(filterEvents(list, { text: '5432' }).map((e) => e.id), [1], 'text searches the detail too');
  assert.equal(filterEvents(list, {}).length, 3);
});

const finding = (id: string, severity: string, over: Partial<Finding> = {}): Finding => ({
  id,
  severity,
  package: { name: 'libssl3', version: '3.0.11', ecosystem: 'Debian:12' },
  ...over,
});

test('findings: in use first, then severity and score', () => {
  const list = [finding('A', 'critical', { score: 9.8 }), finding('B', 'low', { in_use: true }), finding('C', 'critical', { score: 10 }), finding('D', 'bogus')];
  assert.deepEqual(sortFindings(list).map((f) => f.id), ['B', 'C', 'A', 'D']);
  assert.deepEqual(severityCounts(list), { critical: 2, high: 0, medium: 0, low: 1, unknown: 1, inUse: 1 });
});

test('the vulnerabilities answer in its possible shapes', () => {
  const r = (name: string, findings: Finding[] | null) => ({ target: { kind: 'image', name }, findings, scanned_at: '2025-01-01T00:00:00Z' });
  assert.equal(normalizeScan([r('a', null)])[0].findings!.length, 0);
  assert.deepEqual(normalizeScan({ reports: [r('a', []), r('b', [finding('X', 'high', { in_use: true })])] }).map((x) => x.target.name), ['b', 'a']);
  assert.equal(normalizeScan(r('one', [])).length, 1);
  const served = normalizeScan([
    { kind: 'container', workload: 'abc', workload_name: 'web-1', image: 'nginx:1', state: 'done', summary: {}, findings: [finding('Y', 'critical')], scanned_at: '2025-01-01T00:00:00Z' },
    { kind: 'host', state: 'scanning', summary: {}, findings: null },
  ]);
  assert.deepEqual(served.map((x) => [x.target.kind, x.target.name, x.image, x.findings!.length]), [['container', 'web-1', 'nginx:1', 1], ['host', 'host', undefined, 0]]);
  assert.throws(() => normalizeScan({ hello: 1 }), /unexpected vulnerabilities answer/);
  assert.throws(() => normalizeScan([{ nope: true }]), /unexpected scan report/);
});

test('audit results by section, warnings first, ids in numeric order', () => {
  const res = (id: string, status: AuditResult['status']): AuditResult => ({ id, section: id.split('.')[0], title: id, level: 1, scored: true, status });
  const s = auditSections([res('5.10', 'PASS'), res('5.2', 'PASS'), res('1.1', 'PASS'), res('5.31', 'WARN'), res('10.1', 'INFO')]);
  assert.deepEqual(s.map((x) => x.section), ['1', '5', '10']);
  assert.deepEqual(s[1].results.map((r) => r.id), ['5.31', '5.2', '5.10']);
  assert.deepEqual(auditSections([res('5.10', 'PASS'), res('5.31', 'WARN')], 'WARN').map((x) => x.results.length), [1]);
});

test('formatting', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(50 * 1024 * 1024), '50 MiB');
  const now = Date.parse('2025-01-01T10:00:00Z');
  assert.equal(formatAgo('2025-01-01T09:59:30Z', now), '30s ago');
  assert.equal(formatAgo('2025-01-01T07:00:00Z', now), '3h ago');
  assert.equal(formatAgo(undefined, now), 'never');
  assert.equal(formatAgo('0001-01-01T00:00:00Z', now).endsWith('d ago'), true);
});
