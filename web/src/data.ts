// Data handling of the pages other than the map: events, findings, audit results.
// Pure functions, tested without a browser.

import type { AuditResult, Finding, ScanReport, VigilEvent } from './types';

/**
 * mergeEvents adds incoming events to list (newest first, by ID). An event that is
 * already there is replaced: the controller sends an aggregated violation again with
 * its new count. At most max are kept.
 */
export function mergeEvents(list: VigilEvent[], incoming: VigilEvent[], max: number): VigilEvent[] {
  if (incoming.length === 0) return list;
  const byId = new Map<number, VigilEvent>();
  for (const e of list) byId.set(e.id, e);
  for (const e of incoming) byId.set(e.id, e);
  const out = [...byId.values()].sort((a, b) => b.id - a.id);
  if (out.length > max) out.length = max;
  return out;
}

export interface EventFilter {
  type?: string;
  severity?: string;
  text?: string;
}

export function filterEvents(list: VigilEvent[], f: EventFilter): VigilEvent[] {
  const text = (f.text ?? '').trim().toLowerCase();
  return list.filter(
    (e) =>
      (!f.type || e.type === f.type || e.type.startsWith(f.type + '.')) &&
      (!f.severity || e.severity === f.severity) &&
      (!text || e.summary.toLowerCase().includes(text) || JSON.stringify(e.detail ?? {}).toLowerCase().includes(text)),
  );
}

const severityRank: Record<string, number> = { critical: 4, high: 3, medium: 2, low: 1, unknown: 0 };

export function severityOf(s: string | undefined): string {
  const t = (s ?? '').toLowerCase();
  return t in severityRank ? t : 'unknown';
}

/** Findings in the order a person should read them: in use first, then by severity and score. */
export function sortFindings(list: Finding[]): Finding[] {
  return [...list].sort(
    (a, b) =>
      Number(Boolean(b.in_use)) - Number(Boolean(a.in_use)) ||
      severityRank[severityOf(b.severity)] - severityRank[severityOf(a.severity)] ||
      (b.score ?? 0) - (a.score ?? 0) ||
      a.id.localeCompare(b.id) ||
      a.package.name.localeCompare(b.package.name),
  );
}

export interface SeverityCounts {
  critical: number;
  high: number;
  medium: number;
  low: number;
  unknown: number;
  inUse: number;
}

export function severityCounts(list: Finding[]): SeverityCounts {
  const c: SeverityCounts = { critical: 0, high: 0, medium: 0, low: 0, unknown: 0, inUse: 0 };
  for (const f of list) {
    c[severityOf(f.severity) as keyof Omit<SeverityCounts, 'inUse'>]++;
    if (f.in_use) c.inUse++;
  }
  return c;
}

/** controller.VulnTarget, what GET /api/v1/vulnerabilities lists. */
interface VulnTarget {
  kind: string;
  workload?: string;
  workload_name?: string;
  image?: string;
  image_id?: string;
  state?: string;
  error?: string;
  scanned_at?: string;
  os?: ScanReport['os'];
  findings: Finding[] | null;
  warnings?: string[];
}

function isTarget(x: unknown): x is VulnTarget {
  return typeof x === 'object' && x !== null && typeof (x as VulnTarget).kind === 'string' && 'findings' in x;
}

/**
 * normalizeScan reads the answer of GET /api/v1/vulnerabilities: a list of the server's
 * per-workload results (controller.VulnTarget) or of scan reports, an object holding such a list under "reports", or a
 * single report. Anything else is an error naming what was found.
 */
export function normalizeScan(body: unknown): ScanReport[] {
  const isReport = (x: unknown): x is ScanReport =>
    typeof x === 'object' && x !== null && 'target' in x && typeof (x as ScanReport).target === 'object';
  let list: unknown[];
  if (Array.isArray(body)) {
    list = body;
  } else if (typeof body === 'object' && body !== null && Array.isArray((body as { reports?: unknown }).reports)) {
    list = (body as { reports: unknown[] }).reports;
  } else if (isReport(body)) {
    list = [body];
  } else {
    throw new Error(`unexpected vulnerabilities answer: ${JSON.stringify(body)?.slice(0, 80)}`);
  }
  const out: ScanReport[] = [];
  for (const r of list) {
    if (isReport(r)) {
      out.push({ ...r, findings: r.findings ?? [] });
    } else if (isTarget(r)) {
      // The server's per-workload view (controller.VulnTarget): the scanned image of a
      // running container, of the host, or of an image with no container.
      out.push({
        target: { kind: r.kind, name: r.workload_name || r.image || r.workload || r.kind, id: r.workload || r.image_id },
        image: r.kind === 'container' ? r.image : undefined,
        state: r.state,
        error: r.error,
        os: r.os,
        warnings: r.warnings,
        findings: r.findings ?? [],
        scanned_at: r.scanned_at ?? '',
      });
    } else {
      throw new Error(`unexpected scan report: ${JSON.stringify(r)?.slice(0, 80)}`);
    }
  }
  // Targets with findings in use first, then by the worst finding.
  const worst = (r: ScanReport) => {
    const c = severityCounts(r.findings ?? []);
    return c.inUse * 1e6 + c.critical * 1e4 + c.high * 1e2 + c.medium;
  };
  return out.sort((a, b) => worst(b) - worst(a) || a.target.name.localeCompare(b.target.name));
}

const statusRank: Record<string, number> = { WARN: 0, INFO: 1, NOTE: 2, SKIP: 3, PASS: 4 };

/** Audit results grouped by section, failures first within each. */
export function auditSections(results: AuditResult[], status?: string): { section: string; results: AuditResult[] }[] {
  const bySection = new Map<string, AuditResult[]>();
  for (const r of results) {
    if (status && r.status !== status) continue;
    const list = bySection.get(r.section) ?? [];
    list.push(r);
    bySection.set(r.section, list);
  }
  const idKey = (id: string) => id.split('.').map((p) => p.padStart(4, '0')).join('.');
  return [...bySection.entries()]
    .sort((a, b) => Number(a[0]) - Number(b[0]) || a[0].localeCompare(b[0]))
    .map(([section, list]) => ({
      section,
      results: list.sort((a, b) => (statusRank[a.status] ?? 9) - (statusRank[b.status] ?? 9) || idKey(a.id).localeCompare(idKey(b.id))),
    }));
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** "5s ago", "3m ago", "2h ago", "4d ago". */
export function formatAgo(t: number | string | undefined, now: number): string {
  const ms = typeof t === 'string' ? Date.parse(t) : (t ?? 0);
  if (!ms || Number.isNaN(ms)) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}
