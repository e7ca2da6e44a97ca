// Street colours: time since last plowed, in the town's bins; salted-only and not-yet told
// apart; line width by priority. The tiles carry times (epoch seconds), not colours, so
// the page ages them: NOW is pushed into the style every minute. Live deltas arrive as
// feature-state and win over the tile when newer.

export const COLORS = {
  bins: ['#00684a', '#2f9e44', '#b08900', '#d9480f', '#a61e4d'],
  salted: '#6741d9',
  none: '#868e96',
};

// bins_min: upper bounds in minutes, e.g. [60, 180, 360, 720] -> 5 classes.
export function binColors(binsMin) {
  const n = binsMin.length + 1;
  // Spread the palette over however many classes the town configured.
  return Array.from({ length: n }, (_, i) => COLORS.bins[Math.round((i * (COLORS.bins.length - 1)) / Math.max(1, n - 1))]);
}

function newest(name) {
  return ['max', ['coalesce', ['feature-state', name], 0], ['coalesce', ['get', name], 0]];
}

export function colorExpression(binsMin, nowS) {
  const colors = binColors(binsMin);
  const step = ['step', ['-', nowS, newest('plowed')], colors[0]];
  binsMin.forEach((m, i) => step.push(m * 60, colors[i + 1]));
  return [
    'case',
    ['>', newest('plowed'), 0], step,
    ['>', newest('salted'), 0], COLORS.salted,
    COLORS.none,
  ];
}

export const PRIORITY = ['coalesce', ['get', 'priority'], 4];

// Main routes (priority 1) widest. `extra` pixels widen a halo (zoom must stay on top).
export function widthExpression(extra = 0) {
  const w = (a, b, c, d) => ['match', PRIORITY, 1, a + extra, 2, b + extra, 3, c + extra, d + extra];
  return ['interpolate', ['exponential', 1.6], ['zoom'], 11, w(3, 2.4, 1.6, 1.2), 18, w(16, 13, 10, 7)];
}

// Not yet serviced streets are dashed so the difference does not rest on colour alone.
export function isServiced() {
  return ['any', ['>', newest('plowed'), 0], ['>', newest('salted'), 0]];
}

export function legendItems(binsMin) {
  const colors = binColors(binsMin);
  const h = (m) => (m % 60 === 0 ? `${m / 60} h` : `${m} min`);
  const items = [];
  binsMin.forEach((m, i) => {
    const from = i === 0 ? null : binsMin[i - 1];
    items.push({ color: colors[i], text: from === null ? `Plowed < ${h(m)} ago` : `Plowed ${h(from)}–${h(m)} ago` });
  });
  items.push({ color: colors[colors.length - 1], text: `Plowed > ${h(binsMin[binsMin.length - 1])} ago` });
  items.push({ color: COLORS.salted, text: 'Salted, not yet plowed', kind: 'salted' });
  items.push({ color: COLORS.none, text: 'Not yet this storm', kind: 'none' });
  return items;
}
