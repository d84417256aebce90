// The policy page: the groups and their modes (a switch to Protect shows first what it
// would block), the rules with their hits, promote and delete, and the YAML export.

import { ApiError, del, get, post, put } from '../api';
import { formatAgo } from '../data';
import { errorBox, fill, h, table } from '../dom';
import type { Mode, PolicyView, Rule, Simulation, WorkloadGroup } from '../types';

const modes: Mode[] = ['discover', 'monitor', 'protect'];

const modeHelp: Record<Mode, string> = {
  discover: 'allows everything and learns it as rules',
  monitor: 'allows everything; what no rule allows is reported as a violation',
  protect: 'blocks what no rule allows, and reports it',
};

export class PolicyPage {
  readonly el = h('section', { class: 'page policy-page' });
  private readonly msg = h('div', { class: 'messages', 'aria-live': 'polite' });
  private readonly groupsEl = h('div');
  private readonly simEl = h('div', { class: 'simulation' });
  private readonly rulesEl = h('div');
  private ruleFilter = '';

  constructor() {
    fill(
      this.el,
      h('h2', {}, 'Groups and modes'),
      h('p', { class: 'muted' }, 'Discover ', modeHelp.discover, '; Monitor ', modeHelp.monitor, '; Protect ', modeHelp.protect, '.'),
      this.msg,
      this.simEl,
      this.groupsEl,
      h(
        'h2',
        {},
        'Rules ',
        h('a', { class: 'button', href: '/api/v1/policy/export', download: 'vigil-policy.yaml' }, 'Export YAML'),
      ),
      h('input', {
        type: 'search',
        placeholder: 'filter rules (group, port, app)',
        'aria-label': 'filter rules',
        oninput: (e: Event) => {
          this.ruleFilter = (e.target as HTMLInputElement).value.toLowerCase();
          void this.load();
        },
      }),
      this.rulesEl,
    );
  }

  async start(): Promise<void> {
    await this.load();
  }

  stop(): void {}

  private say(text: string, error = false): void {
    fill(this.msg, error ? errorBox(text) : h('div', { class: 'ok' }, text));
  }

  async load(): Promise<void> {
    try {
      const [p, groups] = await Promise.all([get<PolicyView>('/api/v1/policy'), get<WorkloadGroup[]>('/api/v1/groups')]);
      this.renderGroups(p, groups);
      this.renderRules(p.rules);
    } catch (err) {
      this.say((err as Error).message, true);
    }
  }

  private renderGroups(p: PolicyView, running: WorkloadGroup[]): void {
    const names = new Set<string>([...running.map((g) => g.name), ...p.groups.map((g) => g.name)]);
    const members = new Map(running.map((g) => [g.name, g.members.length]));
    const rows = [...names].sort().map((name) => {
      const pg = p.groups.find((g) => g.name === name);
      const mode = pg?.mode ?? p.default_mode;
      const learned = p.rules.filter((r) => r.origin === 'learned' && (r.from === name || r.to === name)).length;
      return [
        h('span', { class: 'group-name' }, name),
        String(members.get(name) ?? 0),
        pg?.origin ?? 'learned',
        String(learned),
        h(
          'div',
          { class: 'modes', role: 'group', 'aria-label': `mode of ${name}`, 'data-group': name },
          modes.map((m) =>
            h(
              'button',
              {
                type: 'button',
                class: m === mode ? `mode ${m} current` : `mode ${m}`,
                'aria-pressed': m === mode ? 'true' : 'false',
                'data-mode': m,
                onclick: () => void this.switchMode(name, m, mode),
              },
              m,
            ),
          ),
          pg ? '' : h('span', { class: 'muted' }, ' (default)'),
        ),
      ];
    });
    fill(
      this.groupsEl,
      h('p', {}, 'Default mode of groups not listed: ', h('b', {}, p.default_mode)),
      table(['group', 'running', 'origin', 'learned rules', 'mode'], rows, 'groups'),
    );
  }

  private async switchMode(group: string, to: Mode, from: Mode): Promise<void> {
    if (to === from) return;
    if (to === 'protect') {
      await this.simulate(group);
      return;
    }
    await this.setMode(group, to);
  }

  private async setMode(group: string, mode: Mode): Promise<void> {
    try {
      await put(`/api/v1/groups/${encodeURIComponent(group)}/mode`, { mode });
      fill(this.simEl);
      this.say(`${group} is now in ${mode} mode.`);
      await this.load();
    } catch (err) {
      this.say(`could not set ${group} to ${mode}: ${(err as Error).message}`, true);
    }
  }

  /** Shows what a switch to Protect would have blocked over the last day, then asks. */
  private async simulate(group: string): Promise<void> {
    fill(this.simEl, h('p', {}, `Replaying the last 24 hours of ${group}'s traffic against Protect…`));
    let sim: Simulation;
    try {
      sim = await post<Simulation>('/api/v1/policy/simulate', { mode: 'protect', groups: [group], since: '24h' });
    } catch (err) {
      fill(this.simEl, errorBox(`simulation failed: ${(err as Error).message}`));
      return;
    }
    const blocked = sim.not_allowed.filter((r) => r.verdict === 'deny');
    const total = blocked.reduce((n, r) => n + r.flows, 0);
    fill(
      this.simEl,
      h(
        'div',
        { class: blocked.length ? 'sim-box warn' : 'sim-box ok', role: 'dialog', 'aria-label': `switch ${group} to protect` },
        h('h3', {}, `Switch ${group} to Protect?`),
        h(
          'p',
          {},
          blocked.length === 0
            ? `Of ${sim.flows_replayed} flows of the last 24 hours, none would have been blocked.`
            : `Of ${sim.flows_replayed} flows of the last 24 hours, ${total} would have been blocked (${blocked.length} kinds of connection):`,
        ),
        blocked.length
          ? table(
              ['from', 'to', 'port', 'app', 'flows', 'clients', 'last seen'],
              blocked.map((r) => [r.from, r.to, r.port ? `${r.proto}/${r.port}` : r.proto, r.app || '—', String(r.flows), (r.clients ?? []).join(', '), formatAgo(r.last_seen, Date.now())]),
              'compact',
            )
          : '',
        h(
          'div',
          { class: 'actions' },
          h('button', { type: 'button', class: 'danger', onclick: () => void this.setMode(group, 'protect') }, blocked.length ? 'Block these and switch' : 'Switch to Protect'),
          h('button', { type: 'button', onclick: () => fill(this.simEl) }, 'Cancel'),
        ),
      ),
    );
  }

  private renderRules(rules: Rule[]): void {
    const f = this.ruleFilter;
    const shown = rules
      .filter((r) => !f || `${r.from} ${r.to} ${r.ports.join(' ')} ${(r.apps ?? []).join(' ')} ${r.origin}`.toLowerCase().includes(f))
      .sort((a, b) => a.from.localeCompare(b.from) || a.to.localeCompare(b.to) || a.id.localeCompare(b.id));
    if (shown.length === 0) {
      fill(this.rulesEl, h('p', { class: 'muted' }, rules.length ? 'No rule matches the filter.' : 'No rules yet: groups in Discover mode learn them from their traffic.'));
      return;
    }
    const now = Date.now();
    fill(
      this.rulesEl,
      table(
        ['from', 'to', 'ports', 'apps', 'action', 'origin', 'hits', 'last hit', ''],
        shown.map((r) => [
          r.from,
          r.to,
          r.ports.join(', '),
          (r.apps ?? []).join(', ') || 'any',
          h('span', { class: `badge ${r.action}` }, r.action),
          h('span', { class: `origin ${r.origin}` }, r.origin),
          String(r.hits),
          r.last_hit ? formatAgo(r.last_hit, now) : 'never',
          h(
            'span',
            { class: 'row-actions' },
            r.origin === 'learned'
              ? h('button', { type: 'button', title: 'keep this rule as a user rule', onclick: () => void this.promote(r) }, 'Promote')
              : '',
            h('button', { type: 'button', class: 'danger', onclick: () => void this.remove(r) }, 'Delete'),
          ),
        ]),
        'rules',
      ),
    );
  }

  private async promote(r: Rule): Promise<void> {
    try {
      await post(`/api/v1/rules/${encodeURIComponent(r.id)}/promote`);
      this.say(`Rule ${r.from} → ${r.to} ${r.ports.join(', ')} is now a user rule.`);
      await this.load();
    } catch (err) {
      this.say(`promote failed: ${(err as Error).message}`, true);
    }
  }

  private async remove(r: Rule): Promise<void> {
    if (!window.confirm(`Delete the rule ${r.from} → ${r.to} ${r.ports.join(', ')}?`)) return;
    try {
      await del(`/api/v1/rules/${encodeURIComponent(r.id)}`);
      this.say(`Deleted the rule ${r.from} → ${r.to} ${r.ports.join(', ')}.`);
      await this.load();
    } catch (err) {
      this.say(`delete failed: ${err instanceof ApiError ? err.message : String(err)}`, true);
    }
  }
}
