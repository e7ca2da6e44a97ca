// The public websocket, reconnecting with jittered back-off. Each (re)connect starts with
// a snapshot, so nothing a client missed while away stays missing.
const MIN_MS = 1000;
const MAX_MS = 30000;

export function connectLive(slug, { onMessage, onState }) {
  let backoff = MIN_MS;
  let timer = null;
  let socket = null;
  let openedAt = 0;

  function url() {
    const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${window.location.host}/ws/public/${encodeURIComponent(slug)}`;
  }

  function open() {
    timer = null;
    const ws = new WebSocket(url());
    socket = ws;
    ws.addEventListener('open', () => {
      openedAt = Date.now();
      onState('live');
    });
    ws.addEventListener('message', (ev) => {
      if (socket !== ws || typeof ev.data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg && typeof msg === 'object') onMessage(msg);
    });
    ws.addEventListener('close', () => {
      if (socket !== ws) return;
      socket = null;
      if (openedAt && Date.now() - openedAt > 10000) backoff = MIN_MS;
      openedAt = 0;
      retry();
    });
  }

  function retry() {
    if (timer) return;
    const delay = Math.min(MAX_MS, backoff * (0.8 + Math.random() * 0.4));
    backoff = Math.min(backoff * 2, MAX_MS);
    onState('reconnecting');
    timer = setTimeout(open, delay);
  }

  function now() {
    if (!timer || document.hidden) return;
    clearTimeout(timer);
    open();
  }

  window.addEventListener('online', now);
  document.addEventListener('visibilitychange', now);
  onState('connecting');
  open();
}
