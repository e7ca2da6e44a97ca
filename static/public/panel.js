// The side sheet: find my street (name, address, near me), the answer card with its
// evidence and outlook, and "report a problem". Built with DOM calls (the CSP forbids
// inline anything); the card is a live region so screen readers hear the answer.
import { ago, blocksSummary, clock, headline, outlook, parseTime } from './words.js';

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

async function getJson(url, options) {
  const resp = await fetch(url, { headers: { Accept: 'application/json' }, ...options });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = new Error(typeof body.detail === 'string' ? body.detail : `HTTP ${resp.status}`);
    err.status = resp.status;
    throw err;
  }
  return body;
}

export class Panel {
  // ctx: {slug, timeZone(), storm(), onShow({bbox, ids, point})}
  constructor(ctx) {
    this.ctx = ctx;
    this.base = `/api/towns/${encodeURIComponent(ctx.slug)}`;
    this.current = null; // {kind: 'segment'|'street', key, ids}
    this.card = $('card');
    $('search-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.search($('q').value.trim());
    });
    $('near-me').addEventListener('click', () => this.nearMe());
  }

  note(text, isError = false) {
    const p = $('search-note');
    p.textContent = text;
    p.classList.toggle('error', isError);
    p.hidden = !text;
  }

  async search(q) {
    const list = $('results');
    list.replaceChildren();
    if (!q) return;
    this.note('Searching…');
    let found;
    try {
      found = await getJson(`${this.base}/search?q=${encodeURIComponent(q)}`);
    } catch (err) {
      this.note(`Search failed (${err.message}).`, true);
      return;
    }
    const results = found.results || [];
    if (!results.length) {
      this.note(`No street matches “${q}”. Try another spelling, or “Near me”.`);
      return;
    }
    // An exact match (or the only one) answers at once; otherwise the resident picks.
    if (results.length === 1 || results[0].score >= 0.999) {
      this.open(results[0]);
      return;
    }
    this.note(`${results.length} matches:`);
    for (const r of results) {
      const li = el('li');
      const b = el('button', 'result', r.label);
      b.type = 'button';
      if (r.kind === 'street') b.append(el('span', 'result-meta', ` · priority ${r.priority}`));
      b.addEventListener('click', () => this.open(r));
      li.append(b);
      list.append(li);
    }
    list.querySelector('button').focus();
  }

  open(result) {
    $('results').replaceChildren();
    this.note('');
    if (result.kind === 'street') this.showStreet(result.name);
    else this.showSegment(result.segment, { point: result.point, label: result.label });
  }

  async nearMe() {
    if (!navigator.geolocation) {
      this.note('This browser cannot tell where you are.', true);
      return;
    }
    this.note('Finding where you are…');
    navigator.geolocation.getCurrentPosition(
      async (pos) => {
        const { latitude, longitude } = pos.coords;
        try {
          const card = await getJson(`${this.base}/nearest?lat=${latitude}&lon=${longitude}`);
          this.note('');
          this.render(card, { point: [longitude, latitude] });
        } catch (err) {
          this.note(err.status === 404 ? 'You seem to be outside this town’s streets.' : `Failed (${err.message}).`, true);
        }
      },
      () => this.note('Location is not available; search by street name instead.', true),
      { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 },
    );
  }

  async showSegment(id, extra = {}) {
    try {
      this.render(await getJson(`${this.base}/segments/${id}`), extra);
    } catch (err) {
      this.note(`Could not load that street (${err.message}).`, true);
    }
  }

  async showStreet(name) {
    try {
      this.render(await getJson(`${this.base}/street-status?name=${encodeURIComponent(name)}`), {});
    } catch (err) {
      this.note(`Could not load that street (${err.message}).`, true);
    }
  }

  // A live delta touched what the card shows: ask again (cheap, and only then).
  refreshIf(ids) {
    if (this.current && this.current.ids.some((id) => ids.has(id))) this.reload();
  }

  reload() {
    if (!this.current) return;
    if (this.current.kind === 'street') this.showStreet(this.current.key);
    else this.showSegment(this.current.key, this.current.extra);
  }

  close() {
    this.current = null;
    this.card.hidden = true;
    this.card.replaceChildren();
    this.ctx.onShow(null);
  }

  render(card, extra) {
    const now = Date.now();
    const tz = this.ctx.timeZone();
    const c = this.card;
    c.replaceChildren();
    const head = el('div', 'card-head');
    const title = el('h2', 'card-title', card.kind === 'street' ? card.name : card.segment.name || 'Unnamed street');
    title.tabIndex = -1;
    const close = el('button', 'card-close', '×');
    close.type = 'button';
    close.setAttribute('aria-label', 'Close');
    close.addEventListener('click', () => this.close());
    head.append(title, close);
    c.append(head);
    if (extra.label && extra.label !== title.textContent) c.append(el('p', 'card-sub', extra.label));

    let ids;
    let priority;
    if (card.kind === 'street') {
      ids = card.blocks.map((b) => b.id);
      priority = card.priority;
      const worst = card.blocks.find((b) => b.state === 'none') || card.blocks[0];
      c.append(el('p', `card-status state-${worst.state}`, blocksSummary(card.blocks, now)));
      c.append(el('p', 'card-hint', 'Tap a block on the map for its own answer and evidence.'));
    } else {
      ids = [card.segment.id];
      priority = card.segment.priority;
      const s = card.status;
      c.append(el('p', `card-status state-${s.state}`, headline(s, card.storm, now)));
      const facts = el('dl', 'card-facts');
      const fact = (k, v) => facts.append(el('dt', null, k), el('dd', null, v));
      if (s.last_service) fact('Last service', `${clock(parseTime(s.last_service), tz)} (${ago(parseTime(s.last_service), now)})`);
      fact('Passes this storm', String(s.passes));
      fact('Priority', `${priority} (1 is plowed first)`);
      if (typeof card.distance_m === 'number') fact('Distance from you', `${Math.round(card.distance_m)} m`);
      c.append(facts);
      c.append(this.evidence(card.evidence, tz));
    }
    const out = el('div', 'card-outlook');
    out.append(el('h3', null, 'Outlook'));
    const ul = el('ul');
    for (const line of outlook(card.outlook, priority)) ul.append(el('li', null, line));
    out.append(ul);
    c.append(out);
    if (card.as_of) c.append(el('p', 'card-hint', `Shown with a delay: as of ${clock(parseTime(card.as_of), tz)}.`));
    if (card.kind === 'segment') c.append(this.reportForm(card.segment.id));
    c.hidden = false;
    this.current = { kind: card.kind, key: card.kind === 'street' ? card.name : card.segment.id, ids, extra };
    this.ctx.onShow({ bbox: card.kind === 'street' ? card.bbox : card.segment.bbox, ids, point: extra.point });
    if (!c.contains(document.activeElement)) title.focus({ preventScroll: true });
  }

  evidence(items, tz) {
    const box = el('details', 'card-evidence');
    box.append(el('summary', null, items.length ? `Evidence: ${items.length} recorded ${items.length === 1 ? 'pass' : 'passes'}` : 'Evidence: no pass recorded this storm'));
    const ul = el('ul');
    for (const e of items) {
      const what = [e.plowed ? 'blade down' : 'blade up', e.salted ? 'salting' : null].filter(Boolean).join(', ');
      const li = el('li', null, `${e.vehicle} · ${what} · ${clock(parseTime(e.ended_at), tz)} · match confidence ${Math.round(e.confidence * 100)}%`);
      ul.append(li);
    }
    box.append(ul);
    if (items.length) box.open = true;
    return box;
  }

  reportForm(segmentId) {
    const box = el('details', 'card-report');
    box.append(el('summary', null, 'Report a problem with this street'));
    const form = el('form', 'report-form');
    const label = el('label', null, 'What is wrong?');
    const select = el('select');
    select.id = 'report-code';
    label.htmlFor = 'report-code';
    for (const [value, text] of [['not_plowed', 'It was not plowed'], ['not_salted', 'It was not salted'], ['blocked', 'It is blocked by snow'], ['other', 'Something else']]) {
      const o = el('option', null, text);
      o.value = value;
      select.append(o);
    }
    const tlabel = el('label', null, 'Details (optional, no personal information needed)');
    const text = el('textarea');
    text.id = 'report-text';
    text.maxLength = 500;
    text.rows = 2;
    tlabel.htmlFor = 'report-text';
    const send = el('button', 'report-send', 'Send report');
    send.type = 'submit';
    const status = el('p', 'report-status');
    status.setAttribute('role', 'status');
    form.append(label, select, tlabel, text, send, status);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      send.disabled = true;
      try {
        const r = await getJson(`${this.base}/reports`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({ segment_id: segmentId, service_code: select.value, description: text.value || null }),
        });
        status.textContent = `Thank you. Report #${r.service_request_id} was sent to the dispatchers.`;
        form.reset();
      } catch (err) {
        status.textContent = err.status === 429 ? 'Too many reports from this connection; please try again later.' : `Not sent (${err.message}).`;
        send.disabled = false;
      }
    });
    box.append(form);
    return box;
  }
}
