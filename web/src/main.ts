// The console's shell: sign-in, navigation between pages, the server's health.

import { ApiError, del, get, post, setUnauthorizedHandler } from './api';
import { errorBox, fill, h } from './dom';
import { MapPage } from './map';
import { CompliancePage } from './pages/compliance';
import { EventsPage } from './pages/events';
import { PolicyPage } from './pages/policy';
import { VulnerabilitiesPage } from './pages/vulnerabilities';
import type { Health } from './types';

interface Page {
  el: HTMLElement;
  start(): Promise<void>;
  stop(): void;
}

const routes: { path: string; title: string; make: () => Page }[] = [
  { path: 'map', title: 'Map', make: () => new MapPage() },
  { path: 'policy', title: 'Policy', make: () => new PolicyPage() },
  { path: 'events', title: 'Events', make: () => new EventsPage() },
  { path: 'vulnerabilities', title: 'Vulnerabilities', make: () => new VulnerabilitiesPage() },
  { path: 'compliance', title: 'Compliance', make: () => new CompliancePage() },
];

const root = document.getElementById('app')!;
let current: Page | undefined;
let healthTimer = 0;

function routeOf(hash: string): string {
  const p = hash.replace(/^#\/?/, '').split(/[/?]/)[0];
  return routes.some((r) => r.path === p) ? p : 'map';
}

function showLogin(message?: string): void {
  current?.stop();
  current = undefined;
  clearInterval(healthTimer);
  const token = h('input', { type: 'password', name: 'token', autocomplete: 'off', placeholder: 'vgl_…', 'aria-label': 'API token', required: true });
  const err = h('div', { 'aria-live': 'assertive' }, message ? errorBox(message) : '');
  const form = h(
    'form',
    { class: 'login' },
    h('h1', {}, 'Vigil'),
    h('p', {}, 'Sign in with a link from ', h('code', {}, 'vigil console'), ', or with the API token (', h('code', {}, '/var/lib/vigil/token'), ').'),
    token,
    h('button', { type: 'submit' }, 'Sign in'),
    err,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    post('/api/v1/console/session', { token: token.value.trim() })
      .then(() => showApp())
      .catch((x: Error) => fill(err, errorBox(x instanceof ApiError && x.status === 401 ? 'That token is not valid.' : x.message)));
  });
  fill(root, h('main', { class: 'login-page' }, form));
  token.focus();
}

function showApp(): void {
  const nav = h(
    'nav',
    {},
    routes.map((r) => h('a', { href: `#/${r.path}`, 'data-route': r.path }, r.title)),
  );
  const health = h('span', { class: 'health' });
  const main = h('main', { id: 'content' });
  fill(
    root,
    h(
      'header',
      {},
      h('span', { class: 'brand' }, 'Vigil'),
      nav,
      health,
      h(
        'button',
        {
          type: 'button',
          class: 'logout',
          onclick: () => void del('/api/v1/console/session').finally(() => showLogin()),
        },
        'Sign out',
      ),
    ),
    main,
  );
  const navigate = () => {
    const path = routeOf(location.hash);
    for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.route === path);
    current?.stop();
    const route = routes.find((r) => r.path === path)!;
    document.title = `Vigil · ${route.title}`;
    current = route.make();
    fill(main, current.el);
    current.start().catch((e: Error) => fill(main, errorBox(e.message)));
  };
  window.onhashchange = navigate;
  navigate();
  const checkHealth = () =>
    get<Health>('/api/v1/health')
      .then((x) => {
        health.className = 'health ok';
        health.textContent = `${x.workloads} workloads · up ${x.uptime} · ${x.version}`;
      })
      .catch((e: Error) => {
        health.className = 'health bad';
        health.textContent = e.message;
      });
  void checkHealth();
  clearInterval(healthTimer);
  healthTimer = window.setInterval(checkHealth, 15_000);
}

async function boot(): Promise<void> {
  setUnauthorizedHandler(() => showLogin('Your session has ended; sign in again.'));
  const m = /^#\/login\/([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (m) {
    // The one-time code leaves the address bar (and the history) before it is used.
    history.replaceState(null, '', '/#/map');
    try {
      await post('/api/v1/console/session', { code: m[1] });
      showApp();
    } catch (e) {
      showLogin(e instanceof ApiError && e.status === 401 ? 'This sign-in link has expired or was used already: run vigil console again, or sign in with the token.' : (e as Error).message);
    }
    return;
  }
  try {
    await get('/api/v1/console/session');
    showApp();
  } catch {
    showLogin();
  }
}

void boot();
