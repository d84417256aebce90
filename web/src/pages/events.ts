// The events page: violations, denies, process and file alerts, compliance changes;
// filterable and live.

import { type Stream, get, stream } from '../api';
import { type EventFilter, filterEvents, mergeEvents } from '../data';
import { errorBox, fill, h } from '../dom';
import type { VigilEvent } from '../types';

const maxEvents = 2000;

export class EventsPage {
  readonly el = h('section', { class: 'page events-page' });
  private events: VigilEvent[] = [];
  private filter: EventFilter = {};
  private s?: Stream;
  private readonly list = h('div', { class: 'event-list' });
  private readonly typeSel = h('select', { 'aria-label': 'event type', onchange: () => this.setFilter() });
  private readonly sevSel = h(
    'select',
    { 'aria-label': 'severity', onchange: () => this.setFilter() },
    h('option', { value: '' }, 'any severity'),
    ['critical', 'warning', 'info'].map((s) => h('option', { value: s }, s)),
  );
  private readonly text = h('input', { type: 'search', placeholder: 'search', 'aria-label': 'search events', oninput: () => this.setFilter() });
  private readonly live = h('span', { class: 'live off' }, 'offline');
  private pending: VigilEvent[] = [];
  private timer = 0;

  constructor() {
    fill(this.el, h('div', { class: 'toolbar' }, this.typeSel, this.sevSel, this.text, this.live), this.list);
  }

  async start(): Promise<void> {
    this.s = stream<VigilEvent>(
      '/api/v1/events/stream',
      'event',
      (ev) => {
        this.pending.push(ev);
        if (!this.timer) this.timer = window.setTimeout(() => this.flush(), 200);
      },
      () => void this.load(),
      (on) => {
        this.live.className = on ? 'live on' : 'live off';
        this.live.textContent = on ? 'live' : 'reconnecting';
      },
    );
    await this.load();
  }

  stop(): void {
    this.s?.close();
    clearTimeout(this.timer);
  }

  private async load(): Promise<void> {
    try {
      const list = await get<VigilEvent[]>(`/api/v1/events?limit=${maxEvents}`);
      this.events = mergeEvents(this.events, list, maxEvents);
      this.render();
    } catch (err) {
      fill(this.list, errorBox((err as Error).message));
    }
  }

  private flush(): void {
    this.timer = 0;
    this.events = mergeEvents(this.events, this.pending, maxEvents);
    this.pending = [];
    this.render();
  }

  private setFilter(): void {
    this.filter = { type: this.typeSel.value || undefined, severity: this.sevSel.value || undefined, text: this.text.value };
    this.render();
  }

  private render(): void {
    const types = new Set<string>();
    for (const e of this.events) {
      types.add(e.type);
      const dot = e.type.indexOf('.');
      if (dot > 0) types.add(e.type.slice(0, dot));
    }
    const cur = this.typeSel.value;
    const sorted = [...types].sort();
    if ([...this.typeSel.options].map((o) => o.value).join() !== ['', ...sorted].join()) {
      fill(this.typeSel, h('option', { value: '' }, 'all types'), sorted.map((t) => h('option', { value: t }, t)));
      this.typeSel.value = sorted.includes(cur) ? cur : '';
    }
    const shown = filterEvents(this.events, this.filter).slice(0, 500);
    if (shown.length === 0) {
      fill(this.list, h('p', { class: 'muted' }, this.events.length ? 'No event matches the filters.' : 'No events yet.'));
      return;
    }
    fill(
      this.list,
      shown.map((e) =>
        h(
          'details',
          { class: `event ${e.severity}`, 'data-type': e.type, 'data-id': String(e.id) },
          h(
            'summary',
            {},
            h('time', { datetime: e.time }, new Date(e.time).toLocaleString()),
            h('span', { class: `badge ${e.severity}` }, e.severity),
            h('span', { class: 'type' }, e.type),
            typeof e.detail?.count === 'number' && e.detail.count > 1 ? h('span', { class: 'count' }, `×${e.detail.count}`) : '',
            h('span', { class: 'summary' }, e.summary),
          ),
          e.detail ? h('pre', {}, JSON.stringify(e.detail, null, 2)) : '',
        ),
      ),
    );
  }
}
