// Calls to the Vigil API from the browser. The browser is signed in with an HttpOnly
// session cookie (see internal/api/console.go); every request also carries the header
// X-Vigil-Console, which a page of another origin cannot set without a CORS preflight
// that Vigil never grants: the server requires it on every change made with the cookie.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Called when the API says the session is gone (401), so the app can show the sign-in. */
let onUnauthorized: () => void = () => {};

export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { 'X-Vigil-Console': '1', Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
  });
  if (resp.status === 204) return undefined as T;
  const text = await resp.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: the message below says what came
  }
  if (!resp.ok) {
    const msg = (data as { error?: string } | undefined)?.error ?? `${resp.status} ${resp.statusText}: ${text.slice(0, 200)}`;
    if (resp.status === 401 && !path.startsWith('/api/v1/console/session')) onUnauthorized();
    throw new ApiError(resp.status, msg);
  }
  return data as T;
}

export const get = <T>(path: string) => call<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => call<T>('POST', path, body ?? {});
export const put = <T>(path: string, body: unknown) => call<T>('PUT', path, body);
export const del = <T>(path: string) => call<T>('DELETE', path);

export interface Stream {
  close(): void;
}

/**
 * stream follows a server-sent event stream of the API, handing each event named name to
 * onEvent. EventSource reconnects by itself after a break; onOpen runs on every
 * (re)connection, so the caller can catch up on what it missed.
 */
export function stream<T>(path: string, name: string, onEvent: (v: T) => void, onOpen: () => void, onState: (live: boolean) => void): Stream {
  const es = new EventSource(path);
  es.addEventListener('hello', () => {
    onState(true);
    onOpen();
  });
  es.addEventListener(name, (m) => {
    try {
      onEvent(JSON.parse((m as MessageEvent<string>).data) as T);
    } catch (err) {
      console.warn('vigil: bad stream event', err);
    }
  });
  // Both the server's own "error" event (the stream fell behind) and a broken connection
  // land here; EventSource reconnects after either unless the server refused (401).
  es.addEventListener('error', () => {
    onState(false);
    if (es.readyState === EventSource.CLOSED) {
      // A refused stream (401 after the session expired) is not retried by the browser.
      void get('/api/v1/console/session').catch(() => onUnauthorized());
    }
  });
  return { close: () => es.close() };
}
