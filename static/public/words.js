// Plain words for the residents' page: what a status means, how long ago, how far along.
// Pure functions, no DOM, so the wording is the same everywhere it is shown.

// Date.parse is only guaranteed to handle milliseconds; the server sends microseconds.
export function parseTime(s) {
  if (typeof s !== 'string') return NaN;
  return Date.parse(s.replace(/(\.\d{3})\d+/, '$1'));
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

export function ago(t, now) {
  if (!Number.isFinite(t)) return 'at an unknown time';
  const min = Math.floor(Math.max(0, now - t) / 60000);
  if (min < 1) return 'just now';
  if (min < 90) return `${plural(min, 'minute', 'minutes')} ago`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${plural(h, 'hour', 'hours')} ago`;
  return `${plural(Math.floor(h / 24), 'day', 'days')} ago`;
}

export function clock(t, timeZone) {
  if (!Number.isFinite(t)) return '';
  const opts = { weekday: 'short', hour: '2-digit', minute: '2-digit' };
  try {
    return new Intl.DateTimeFormat(undefined, { ...opts, timeZone }).format(t);
  } catch {
    return new Intl.DateTimeFormat(undefined, opts).format(t);
  }
}

// status: {state, last_service, last_plowed, last_salted, passes}; storm: {running}
export function headline(status, storm, now) {
  const plowed = parseTime(status.last_plowed);
  const salted = parseTime(status.last_salted);
  const serviced = parseTime(status.last_service);
  switch (status.state) {
    case 'plowed':
      return Number.isFinite(salted) ? `Plowed ${ago(plowed, now)}, and salted` : `Plowed ${ago(plowed, now)}`;
    case 'salted':
      return `Salted ${ago(salted, now)}, not yet plowed`;
    case 'serviced':
      return `Serviced ${ago(serviced, now)}`;
    default:
      return storm && !storm.running ? 'Not serviced during this storm' : 'Not yet serviced this storm';
  }
}

// The honest outlook: how far along the street's class and the classes before it are.
// classes: [{priority, serviced_pct, plowed_pct}], sorted by priority.
export function outlook(classes, priority) {
  const lines = [];
  const mine = classes.find((c) => c.priority === priority);
  for (const c of classes) {
    if (c.priority < priority) lines.push(`Priority ${c.priority} streets: ${c.serviced_pct}% done`);
  }
  lines.push(
    mine
      ? `Your street is priority ${priority}; priority ${priority} streets: ${mine.serviced_pct}% done`
      : `Your street is priority ${priority}`,
  );
  const before = classes.filter((c) => c.priority < priority && c.serviced_pct < 100);
  if (before.length) {
    lines.push(`Streets of priority ${before.map((c) => c.priority).join(', ')} usually come first.`);
  }
  return lines;
}

export function stormLabel(storm, timeZone) {
  if (!storm) return 'No storm has been declared yet. Colours show service outside storms.';
  const name = storm.name ? `“${storm.name}”` : 'The storm';
  const started = clock(parseTime(storm.started_at), timeZone);
  if (storm.running) return `${name} is on since ${started}. Colours count from its start.`;
  const ended = clock(parseTime(storm.ended_at), timeZone);
  return `${name} ended ${ended}. Colours show the streets as they were when it ended.`;
}

export function blocksSummary(blocks, now) {
  const plowed = blocks.filter((b) => b.state === 'plowed').length;
  const salted = blocks.filter((b) => b.state === 'salted').length;
  const none = blocks.filter((b) => b.state === 'none').length;
  const parts = [`${plowed} of ${plural(blocks.length, 'block', 'blocks')} plowed`];
  if (salted) parts.push(`${salted} salted only`);
  if (none) parts.push(`${none} not yet serviced`);
  const latest = Math.max(...blocks.map((b) => parseTime(b.last_plowed)).filter(Number.isFinite));
  if (Number.isFinite(latest)) parts.push(`last plowed ${ago(latest, now)}`);
  return parts.join(' · ');
}
