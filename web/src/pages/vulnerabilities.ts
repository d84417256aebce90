// The vulnerabilities page: per image and workload, severity counts, findings in use
// first. The scanner's endpoint may not be there (an older server, or no scan yet):
// a 404 says so rather than failing.

import { ApiError, get } from '../api';
import { normalizeScan, severityCounts, sortFindings } from '../data';
import { errorBox, fill, h, table } from '../dom';
import type { ScanReport } from '../types';

export class VulnerabilitiesPage {
  readonly el = h('section', { class: 'page vulns-page' });

  async start(): Promise<void> {
    let reports: ScanReport[];
    try {
      reports = normalizeScan(await get<unknown>('/api/v1/vulnerabilities'));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        fill(this.el, h('p', { class: 'muted empty' }, 'No scan results yet.'));
      } else {
        fill(this.el, errorBox((err as Error).message));
      }
      return;
    }
    if (reports.length === 0) {
      fill(this.el, h('p', { class: 'muted empty' }, 'No scan results yet.'));
      return;
    }
    fill(
      this.el,
      reports.map((r) => {
        const findings = sortFindings(r.findings ?? []);
        const c = severityCounts(findings);
        return h(
          'details',
          { class: 'scan-target', open: c.inUse > 0 || c.critical > 0 },
          h(
            'summary',
            {},
            h('b', {}, r.target.name),
            ` ${r.target.kind}`,
            r.image ? ` · ${r.image}` : '',
            r.os?.pretty_name ? ` · ${r.os.pretty_name}` : '',
            r.state && r.state !== 'done' ? ` · ${r.state}` : '',
            ' ',
            h('span', { class: 'badge critical' }, `${c.critical} critical`),
            h('span', { class: 'badge high' }, `${c.high} high`),
            h('span', { class: 'badge medium' }, `${c.medium} medium`),
            h('span', { class: 'badge low' }, `${c.low} low`),
            c.inUse ? h('span', { class: 'badge inuse' }, `${c.inUse} in use`) : '',
          ),
          r.error ? errorBox(`scan failed: ${r.error}`) : '',
          findings.length === 0
            ? h('p', { class: 'muted' }, r.scanned_at ? 'No known vulnerability.' : 'Not scanned yet.')
            : table(
                ['', 'id', 'severity', 'score', 'package', 'version', 'fixed in', 'summary'],
                findings.slice(0, 500).map((f) => [
                  f.in_use ? h('span', { class: 'badge inuse', title: 'a running process maps a file of this package' }, 'in use') : '',
                  f.references?.[0]?.startsWith('https://') ? h('a', { href: f.references[0], rel: 'noreferrer noopener', target: '_blank' }, f.id) : f.id,
                  h('span', { class: `badge ${f.severity}` }, f.severity),
                  f.score ? f.score.toFixed(1) : '',
                  f.package.name,
                  f.package.version,
                  f.fixed_version || 'no fix',
                  f.summary ?? '',
                ]),
                'compact',
              ),
        );
      }),
    );
  }

  stop(): void {}
}
