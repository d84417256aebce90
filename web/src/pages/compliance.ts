// The compliance page: the latest CIS Docker Benchmark audit, failures first, with what
// to do about each.

import { ApiError, get, post } from '../api';
import { auditSections } from '../data';
import { errorBox, fill, h } from '../dom';
import type { AuditReport } from '../types';

export class CompliancePage {
  readonly el = h('section', { class: 'page compliance-page' });
  private readonly body = h('div');
  private status = 'WARN';
  private report?: AuditReport;

  constructor() {
    const sel = h(
      'select',
      {
        'aria-label': 'status',
        onchange: (e: Event) => {
          this.status = (e.target as HTMLSelectElement).value;
          this.render();
        },
      },
      ['WARN', 'INFO', 'NOTE', 'SKIP', 'PASS', ''].map((s) => h('option', { value: s }, s || 'all results')),
    );
    fill(
      this.el,
      h('div', { class: 'toolbar' }, sel, h('button', { type: 'button', onclick: () => void this.run() }, 'Run the audit now')),
      this.body,
    );
  }

  async start(): Promise<void> {
    try {
      this.report = await get<AuditReport>('/api/v1/audit');
      this.render();
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        fill(this.body, h('p', { class: 'muted' }, `No audit results yet (${err.message}).`));
      } else {
        fill(this.body, errorBox((err as Error).message));
      }
    }
  }

  stop(): void {}

  private async run(): Promise<void> {
    fill(this.body, h('p', {}, 'Auditing the host and its containers…'));
    try {
      this.report = await post<AuditReport>('/api/v1/audit/run');
      this.render();
    } catch (err) {
      fill(this.body, errorBox((err as Error).message));
    }
  }

  private render(): void {
    const r = this.report;
    if (!r) return;
    const s = r.summary;
    fill(
      this.body,
      h(
        'div',
        { class: 'summary-cards' },
        h('div', { class: 'card' }, h('b', {}, `${s.score.toFixed(0)}%`), ' score'),
        h('div', { class: 'card warn' }, h('b', {}, String(s.warn)), ' to fix'),
        h('div', { class: 'card' }, h('b', {}, String(s.pass)), ' pass'),
        h('div', { class: 'card' }, h('b', {}, String(s.info + s.note)), ' to review'),
        h('div', { class: 'card' }, h('b', {}, String(s.skip)), ' skipped'),
      ),
      h('p', { class: 'muted' }, `${r.benchmark} · ${r.host} · Docker ${r.docker_version} · ${new Date(r.started_at).toLocaleString()} (${r.duration})`),
      auditSections(r.results, this.status || undefined).map((sec) =>
        h(
          'div',
          { class: 'audit-section' },
          h('h3', {}, `Section ${sec.section}`),
          sec.results.map((x) =>
            h(
              'details',
              { class: `audit ${x.status}` },
              h('summary', {}, h('span', { class: `badge ${x.status}` }, x.status), h('code', {}, x.id), ' ', x.title),
              x.reason ? h('p', {}, x.reason) : '',
              x.targets?.length ? h('p', {}, 'Affected: ', x.targets.map((t) => `${t.kind} ${t.name}`).join(', ')) : '',
              x.evidence?.length ? h('ul', { class: 'evidence' }, x.evidence.map((e) => h('li', {}, e))) : '',
              x.remediation ? h('div', { class: 'remediation' }, h('b', {}, 'Remediation: '), x.remediation) : '',
            ),
          ),
        ),
      ),
    );
  }
}
