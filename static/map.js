// Dispatchers' live fleet map for one town, served at /dispatch/t/<slug>/: every vehicle
// by its own name, undelayed (the residents' page is /t/<slug>/, static/public/).
//
// Talks to the server at:
//   GET  /api/towns/<slug>           -> {"slug", "name", "bbox": [minLon, minLat, maxLon, maxLat] | null}
//   GET  /api/towns/<slug>/streets   -> GeoJSON FeatureCollection of lines, properties {name?, priority 1..4}
//   WS   /ws/towns/<slug>            -> {"type": "snapshot"|"positions", "town", "vehicles": [V, ...]}
//        V = {id, label, time (ISO 8601), lat, lon, speed (m/s|null), heading (deg|null),
//             plow (bool|null), spreader (bool|null)}; other message types are ignored.
//
// No base-map tiles and no remote glyphs: streets come from the API, icons and vehicle
// labels are drawn on a canvas, street names show in a tooltip. Plain ES module, no build step;
// MapLibre is the UMD bundle loaded before this file (window.maplibregl).

import { ARROW_LAYOUT, arrowImage } from './arrow.js';

const STALE_MS = 5 * 60 * 1000; // a vehicle not heard from for this long is drawn faded
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const STABLE_CONNECTION_MS = 10000; // a socket that stayed up this long resets the back-off
const ANIMATE_MS = 900; // glide between fixes for at most this long
const ANIMATE_MAX_DEG = 0.02; // jumps larger than this (~2 km) are not animated
const COLOR_DOWN = '#e8590c'; // blade down
const COLOR_UP = '#5f6b7a'; // blade up or unknown
const COLOR_STALE = '#a9b1bb';
const PIXEL_RATIO = 2; // canvas images are drawn at 2x so they stay crisp on phones
const OSM_ATTRIBUTION =
  '<a href="https://www.openstreetmap.org/copyright" target="_blank" rel="noopener">© OpenStreetMap contributors</a>';

const $ = (id) => document.getElementById(id);
const maplibregl = window.maplibregl;
const slug = slugFromPath(window.location.pathname);

// ---------------------------------------------------------------- utilities

function slugFromPath(path) {
  // /dispatch/t/<slug>/ (the residents' page at /t/<slug>/ is static/public/main.js)
  const m = /^(?:\/dispatch)?\/t\/([^/]+)/.exec(path);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

// Date.parse is only guaranteed to handle milliseconds; the server sends microseconds.
function parseTime(s) {
  if (typeof s !== 'string') return NaN;
  return Date.parse(s.replace(/(\.\d{3})\d+/, '$1'));
}

function finite(x) {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

function tristate(x) {
  return x === true ? true : x === false ? false : null;
}

function normalizeVehicle(raw) {
  if (!raw || typeof raw !== 'object') return null;
  const id = typeof raw.id === 'string' || typeof raw.id === 'number' ? String(raw.id) : '';
  const lat = finite(raw.lat);
  const lon = finite(raw.lon);
  if (!id || lat === null || lon === null || Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
  const heading = finite(raw.heading);
  const speed = finite(raw.speed);
  return {
    id,
    label: typeof raw.label === 'string' && raw.label.trim() ? raw.label.trim() : id,
    time: raw.time,
    t: parseTime(raw.time),
    lat,
    lon,
    speed: speed !== null && speed >= 0 ? speed : null,
    heading: heading === null ? null : ((heading % 360) + 360) % 360,
    plow: tristate(raw.plow),
    spreader: tristate(raw.spreader),
  };
}

// Is fix `a` at least as new as `b`? A fix without a usable time never replaces one with a time.
function notOlder(a, b) {
  if (Number.isNaN(a.t)) return Number.isNaN(b.t);
  if (Number.isNaN(b.t)) return true;
  return a.t >= b.t;
}

function ago(t, now) {
  if (Number.isNaN(t)) return 'time unknown';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 90) return `${s} s ago`;
  const min = Math.round(s / 60);
  if (min < 90) return `${min} min ago`;
  const h = Math.round(min / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.round(h / 24)} days ago`;
}

function speedText(v) {
  return v.speed === null ? 'speed unknown' : `${Math.round(v.speed * 3.6)} km/h`;
}

function bladeText(v) {
  return v.plow === true ? 'blade down' : v.plow === false ? 'blade up' : 'blade unknown';
}

function isStale(v, now) {
  return Number.isNaN(v.t) || now - v.t > STALE_MS;
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function validBbox(b) {
  return (
    Array.isArray(b) &&
    b.length === 4 &&
    b.every((x) => typeof x === 'number' && Number.isFinite(x)) &&
    b[0] <= b[2] &&
    b[1] <= b[3]
  );
}

function bboxOfCoords(coords) {
  let b = null;
  for (const [x, y] of coords) {
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    if (!b) b = [x, y, x, y];
    else b = [Math.min(b[0], x), Math.min(b[1], y), Math.max(b[2], x), Math.max(b[3], y)];
  }
  return b;
}

function* geojsonCoords(fc) {
  const walk = function* (c) {
    if (typeof c[0] === 'number') yield c;
    else for (const x of c) yield* walk(x);
  };
  for (const f of (fc && fc.features) || []) {
    if (f && f.geometry && Array.isArray(f.geometry.coordinates)) yield* walk(f.geometry.coordinates);
  }
}

// ---------------------------------------------------------------- canvas images

function canvas(w, h) {
  const c = document.createElement('canvas');
  c.width = Math.ceil(w * PIXEL_RATIO);
  c.height = Math.ceil(h * PIXEL_RATIO);
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.scale(PIXEL_RATIO, PIXEL_RATIO);
  return { c, ctx };
}

function imageData({ c, ctx }) {
  return ctx.getImageData(0, 0, c.width, c.height);
}

// A dot for a vehicle whose heading is unknown.
function dotImage(color) {
  const size = 22;
  const k = canvas(size, size);
  const { ctx } = k;
  ctx.beginPath();
  ctx.arc(size / 2, size / 2, 7, 0, Math.PI * 2);
  ctx.fillStyle = color;
  ctx.fill();
  ctx.lineWidth = 2.5;
  ctx.strokeStyle = '#ffffff';
  ctx.stroke();
  ctx.lineWidth = 1;
  ctx.strokeStyle = 'rgba(0,0,0,0.35)';
  ctx.beginPath();
  ctx.arc(size / 2, size / 2, 8.5, 0, Math.PI * 2);
  ctx.stroke();
  return imageData(k);
}

const LABEL_FONT = '600 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

// A vehicle's name as a small white tag (MapLibre text needs remote glyphs, which we avoid).
function labelImage(text) {
  const probe = canvas(1, 1).ctx;
  probe.font = LABEL_FONT;
  const shown = text.length > 24 ? `${text.slice(0, 23)}…` : text;
  const w = Math.ceil(probe.measureText(shown).width) + 10;
  const h = 18;
  const k = canvas(w, h);
  const { ctx } = k;
  ctx.fillStyle = 'rgba(255,255,255,0.92)';
  ctx.strokeStyle = 'rgba(0,0,0,0.25)';
  ctx.lineWidth = 1;
  ctx.beginPath();
  if (ctx.roundRect) ctx.roundRect(0.5, 0.5, w - 1, h - 1, 4);
  else ctx.rect(0.5, 0.5, w - 1, h - 1);
  ctx.fill();
  ctx.stroke();
  ctx.font = LABEL_FONT;
  ctx.fillStyle = '#1f2933';
  ctx.textBaseline = 'middle';
  ctx.fillText(shown, 5, h / 2 + 0.5);
  return imageData(k);
}

const ICONS = {
  'arrow-down': () => arrowImage(COLOR_DOWN, PIXEL_RATIO, { outline: true }),
  'arrow-up': () => arrowImage(COLOR_UP, PIXEL_RATIO, { outline: true }),
  'arrow-stale': () => arrowImage(COLOR_STALE, PIXEL_RATIO, { outline: true }),
  'dot-down': () => dotImage(COLOR_DOWN),
  'dot-up': () => dotImage(COLOR_UP),
  'dot-stale': () => dotImage(COLOR_STALE),
};

// ---------------------------------------------------------------- state

/** id -> {v: newest fix, pos: [lon, lat, heading|null] drawn now, from, to, start} */
const vehicles = new Map();
let map = null;
let mapReady = false;
let townBbox = null;
let fittedToVehicles = false;
let selectedId = null; // vehicle whose popup is pinned (clicked)
let popupId = null; // vehicle whose popup is open (pinned or hovered)
let animating = false;
let frameScheduled = false;
const labelImages = new Map(); // vehicle id -> text drawn in its label image

function iconFor(v, now) {
  const shape = v.heading === null ? 'dot' : 'arrow';
  const state = isStale(v, now) ? 'stale' : v.plow === true ? 'down' : 'up';
  return `${shape}-${state}`;
}

function shortestTurn(a, b) {
  return ((b - a + 540) % 360) - 180;
}

function currentPos(entry, now) {
  if (!entry.from || now >= entry.start + ANIMATE_MS) return entry.to;
  const f = (now - entry.start) / ANIMATE_MS;
  const e = f * (2 - f); // ease-out
  const [x0, y0, h0] = entry.from;
  const [x1, y1, h1] = entry.to;
  const h = h0 === null || h1 === null ? h1 : (h0 + shortestTurn(h0, h1) * e + 360) % 360;
  return [x0 + (x1 - x0) * e, y0 + (y1 - y0) * e, h];
}

function setFix(v, now) {
  const entry = vehicles.get(v.id);
  const to = [v.lon, v.lat, v.heading];
  if (!entry) {
    vehicles.set(v.id, { v, to, from: null, start: 0 });
    return;
  }
  const pos = currentPos(entry, now);
  const far = Math.abs(pos[0] - to[0]) > ANIMATE_MAX_DEG || Math.abs(pos[1] - to[1]) > ANIMATE_MAX_DEG;
  entry.v = v;
  entry.to = to;
  if (far || document.hidden) {
    entry.from = null;
  } else {
    entry.from = pos;
    entry.start = now;
    animating = true;
  }
}

function applySnapshot(list) {
  // A snapshot is the whole truth: it replaces what we had (e.g. after a reconnect).
  const now = performance.now();
  const fresh = new Map();
  for (const raw of list) {
    const v = normalizeVehicle(raw);
    if (!v) continue;
    const prev = fresh.get(v.id);
    if (!prev || notOlder(v, prev)) fresh.set(v.id, v);
  }
  for (const id of [...vehicles.keys()]) if (!fresh.has(id)) vehicles.delete(id);
  for (const v of fresh.values()) setFix(v, now);
  if (popupId && !vehicles.has(popupId)) closeVehiclePopup();
}

function applyPositions(list) {
  const now = performance.now();
  for (const raw of list) {
    const v = normalizeVehicle(raw);
    if (!v) continue;
    const entry = vehicles.get(v.id);
    if (entry && !notOlder(v, entry.v)) continue; // late, older fix: keep the newer one
    setFix(v, now);
  }
}

function onMessage(data) {
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    return;
  }
  if (!msg || typeof msg !== 'object') return;
  if (msg.town !== undefined && msg.town !== slug) return;
  if (msg.type === 'snapshot' && Array.isArray(msg.vehicles)) applySnapshot(msg.vehicles);
  else if (msg.type === 'positions' && Array.isArray(msg.vehicles)) applyPositions(msg.vehicles);
  else return; // keep-alives and unknown types
  render();
  maybeFitToVehicles();
}

// ---------------------------------------------------------------- drawing

function vehicleFeatures(perfNow, wallNow) {
  const features = [];
  for (const [id, entry] of vehicles) {
    const pos = currentPos(entry, perfNow);
    features.push({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [pos[0], pos[1]] },
      properties: {
        id,
        icon: iconFor(entry.v, wallNow),
        heading: pos[2] === null ? 0 : pos[2],
        // 0 = plowing, 1 = other live vehicle, 2 = not heard from lately
        rank: isStale(entry.v, wallNow) ? 2 : entry.v.plow === true ? 0 : 1,
      },
    });
  }
  return { type: 'FeatureCollection', features };
}

function ensureLabelImages() {
  for (const [id, entry] of vehicles) {
    const text = entry.v.label;
    if (labelImages.get(id) === text) continue;
    const name = `label:${id}`;
    if (map.hasImage(name)) map.removeImage(name);
    map.addImage(name, labelImage(text), { pixelRatio: PIXEL_RATIO });
    labelImages.set(id, text);
  }
  for (const id of [...labelImages.keys()]) {
    if (!vehicles.has(id)) {
      map.removeImage(`label:${id}`);
      labelImages.delete(id);
    }
  }
}

function drawMap() {
  if (!mapReady) return;
  ensureLabelImages();
  const perfNow = performance.now();
  map.getSource('vehicles').setData(vehicleFeatures(perfNow, Date.now()));
  if (popupId) {
    const entry = vehicles.get(popupId);
    if (entry) vehiclePopup.setLngLat(currentPos(entry, perfNow).slice(0, 2));
  }
}

function animationFrame() {
  const now = performance.now();
  let still = false;
  for (const entry of vehicles.values()) {
    if (entry.from && now < entry.start + ANIMATE_MS) still = true;
    else entry.from = null;
  }
  drawMap();
  animating = still;
  if (still) scheduleFrame();
}

function scheduleFrame() {
  if (frameScheduled) return;
  frameScheduled = true;
  requestAnimationFrame(() => {
    frameScheduled = false;
    animationFrame();
  });
}

function render() {
  renderPanel();
  updatePopupContent();
  if (animating && mapReady) scheduleFrame();
  else drawMap();
}

// ---------------------------------------------------------------- panel

const listEl = $('vehicles');
const rows = new Map(); // id -> {li, button, swatch, name, state, seen}

function sortedEntries() {
  return [...vehicles.entries()].sort(([, a], [, b]) =>
    a.v.label.localeCompare(b.v.label, undefined, { numeric: true, sensitivity: 'base' }),
  );
}

function renderPanel() {
  const now = Date.now();
  const entries = sortedEntries();
  for (const [id, row] of rows) {
    if (!vehicles.has(id)) {
      row.li.remove();
      rows.delete(id);
    }
  }
  let down = 0;
  entries.forEach(([id, { v }], i) => {
    let row = rows.get(id);
    if (!row) {
      const li = el('li', 'vehicle');
      const button = el('button', 'vehicle-btn');
      button.type = 'button';
      const swatch = el('span', 'swatch');
      const text = el('span', 'vehicle-text');
      const name = el('span', 'vehicle-name');
      const state = el('span', 'vehicle-state');
      const seen = el('span', 'vehicle-seen');
      text.append(name, state);
      button.append(swatch, text, seen);
      button.addEventListener('click', () => focusVehicle(id));
      li.append(button);
      row = { li, button, swatch, name, state, seen };
      rows.set(id, row);
    }
    if (listEl.children[i] !== row.li) listEl.insertBefore(row.li, listEl.children[i] || null);
    const stale = isStale(v, now);
    if (v.plow === true && !stale) down += 1;
    row.swatch.className = `swatch ${stale ? 'swatch-stale' : v.plow === true ? 'swatch-down' : 'swatch-up'}`;
    row.name.textContent = v.label;
    const parts = [bladeText(v), speedText(v)];
    if (v.spreader === true) parts.push('spreading');
    row.state.textContent = parts.join(' · ');
    row.seen.textContent = ago(v.t, now);
    row.seen.title = Number.isNaN(v.t) ? '' : new Date(v.t).toLocaleString();
    row.li.classList.toggle('is-stale', stale);
    row.li.classList.toggle('is-selected', id === selectedId);
  });
  const n = entries.length;
  $('vehicles-empty').hidden = n > 0;
  $('panel-summary').textContent =
    n === 0 ? 'none yet' : `${n} ${n === 1 ? 'vehicle' : 'vehicles'}, ${down} plowing`;
}

function setupPanelToggle() {
  const panel = $('panel');
  const toggle = $('panel-toggle');
  const phone = window.matchMedia('(max-width: 700px)');
  toggle.addEventListener('click', () => {
    const collapsed = panel.classList.toggle('collapsed');
    toggle.setAttribute('aria-expanded', String(!collapsed));
    if (map) map.resize();
  });
  // Start with the list open; on a short phone screen give the map more room.
  if (phone.matches && window.innerHeight < 560) toggle.click();
}

// ---------------------------------------------------------------- popups

let vehiclePopup = null;
let streetPopup = null;
let hoveredStreet = null;
let streetPopupId = null;

function vehiclePopupContent(v) {
  const now = Date.now();
  const box = el('div', 'popup');
  box.append(el('strong', 'popup-title', v.label));
  box.append(el('div', null, `${bladeText(v)} · ${speedText(v)}`));
  if (v.spreader !== null) box.append(el('div', null, v.spreader ? 'spreader on' : 'spreader off'));
  box.append(el('div', 'popup-muted', `seen ${ago(v.t, now)}`));
  return box;
}

function updatePopupContent() {
  if (!popupId || !vehiclePopup) return;
  const entry = vehicles.get(popupId);
  if (!entry) return closeVehiclePopup();
  vehiclePopup.setDOMContent(vehiclePopupContent(entry.v));
}

function openVehiclePopup(id, pinned) {
  const entry = vehicles.get(id);
  if (!entry || !map) return;
  if (pinned) selectedId = id;
  popupId = id;
  vehiclePopup
    .setLngLat(currentPos(entry, performance.now()).slice(0, 2))
    .setDOMContent(vehiclePopupContent(entry.v));
  if (!vehiclePopup.isOpen()) vehiclePopup.addTo(map);
  vehiclePopup.getElement().classList.toggle('is-pinned', Boolean(pinned));
  renderPanel();
}

function closeVehiclePopup() {
  const had = selectedId !== null;
  popupId = null;
  selectedId = null;
  if (vehiclePopup && vehiclePopup.isOpen()) vehiclePopup.remove();
  if (had) renderPanel();
}

function focusVehicle(id) {
  const entry = vehicles.get(id);
  if (!entry || !map) return;
  map.easeTo({ center: entry.to.slice(0, 2), zoom: Math.max(map.getZoom(), 15), duration: 600 });
  openVehiclePopup(id, true);
}

function streetTooltip(props) {
  const box = el('div', 'popup');
  const name = typeof props.name === 'string' && props.name ? props.name : 'Unnamed street';
  box.append(el('strong', 'popup-title', name));
  const p = Number(props.priority);
  if (p >= 1 && p <= 4) box.append(el('div', 'popup-muted', `plowing priority ${p}`));
  return box;
}

function setHoveredStreet(feature) {
  const id = feature ? feature.id : null;
  if (hoveredStreet === id) return;
  if (hoveredStreet !== null && hoveredStreet !== undefined)
    map.setFeatureState({ source: 'streets', id: hoveredStreet }, { hover: false });
  hoveredStreet = id;
  if (id !== null && id !== undefined) map.setFeatureState({ source: 'streets', id }, { hover: true });
}

function setupInteraction() {
  vehiclePopup = new maplibregl.Popup({
    closeButton: true,
    closeOnClick: false,
    offset: 16,
    maxWidth: '240px',
    className: 'vehicle-popup',
  });
  vehiclePopup.on('close', () => {
    if (popupId !== null) {
      popupId = null;
      selectedId = null;
      renderPanel();
    }
  });
  streetPopup = new maplibregl.Popup({
    closeButton: false,
    closeOnClick: false,
    offset: 10,
    maxWidth: '240px',
    className: 'street-popup',
  });

  const hit = (point) => {
    const box = [
      [point.x - 6, point.y - 6],
      [point.x + 6, point.y + 6],
    ];
    const veh = map.queryRenderedFeatures(box, { layers: ['vehicles-icon'] })[0];
    if (veh) return { vehicle: veh };
    const street = map.queryRenderedFeatures(box, { layers: ['streets-hit'] })[0];
    return { street };
  };

  map.on('mousemove', (e) => {
    const { vehicle, street } = hit(e.point);
    map.getCanvas().classList.toggle('is-pointer', Boolean(vehicle || street));
    if (vehicle) {
      setHoveredStreet(null);
      streetPopup.remove();
      if (selectedId === null) openVehiclePopup(vehicle.properties.id, false);
      return;
    }
    if (selectedId === null && popupId !== null) closeVehiclePopup();
    setHoveredStreet(street || null);
    if (street) showStreetPopup(street, e.lngLat);
    else streetPopup.remove();
  });
  map.getCanvas().addEventListener('mouseleave', () => {
    setHoveredStreet(null);
    streetPopup.remove();
    if (selectedId === null && popupId !== null) closeVehiclePopup();
  });
  map.on('click', (e) => {
    const { vehicle, street } = hit(e.point);
    if (vehicle) {
      streetPopup.remove();
      openVehiclePopup(vehicle.properties.id, true);
      return;
    }
    closeVehiclePopup();
    setHoveredStreet(street || null);
    if (street) showStreetPopup(street, e.lngLat);
    else streetPopup.remove();
  });
}

function showStreetPopup(street, lngLat) {
  streetPopup.setLngLat(lngLat);
  if (streetPopupId !== street.id || !streetPopup.isOpen()) {
    streetPopup.setDOMContent(streetTooltip(street.properties));
    streetPopupId = street.id;
  }
  if (!streetPopup.isOpen()) streetPopup.addTo(map);
}

// ---------------------------------------------------------------- map

const EMPTY = { type: 'FeatureCollection', features: [] };
const PRIORITY = ['coalesce', ['to-number', ['get', 'priority']], 4];

function style() {
  // Widths per priority (1 = main roads, 4 = minor) at zoom 12 and 18.
  const width = (w1, w2, w3, w4) => ['match', PRIORITY, 1, w1, 2, w2, 3, w3, w4];
  return {
    version: 8,
    sources: {
      streets: { type: 'geojson', data: EMPTY, generateId: true },
      vehicles: { type: 'geojson', data: EMPTY },
    },
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': '#f3f1ec' } },
      {
        id: 'streets-casing',
        type: 'line',
        source: 'streets',
        filter: ['<=', PRIORITY, 2],
        layout: { 'line-cap': 'round', 'line-join': 'round', 'line-sort-key': ['-', 10, PRIORITY] },
        paint: {
          'line-color': '#ffffff',
          'line-width': [
            'interpolate', ['exponential', 1.6], ['zoom'],
            12, width(4, 3, 0, 0),
            18, width(20, 15, 0, 0),
          ],
        },
      },
      {
        id: 'streets',
        type: 'line',
        source: 'streets',
        layout: { 'line-cap': 'round', 'line-join': 'round', 'line-sort-key': ['-', 10, PRIORITY] },
        paint: {
          'line-color': [
            'case',
            ['boolean', ['feature-state', 'hover'], false], '#1c7ed6',
            ['match', PRIORITY, 1, '#2f3a4a', 2, '#4f5d70', 3, '#7c8897', '#a7b0bb'],
          ],
          'line-width': [
            'interpolate', ['exponential', 1.6], ['zoom'],
            12, width(2.2, 1.6, 1, 0.6),
            18, width(14, 10, 7, 4),
          ],
        },
      },
      {
        // invisible, wide copy of the streets so they are easy to hover / tap
        id: 'streets-hit',
        type: 'line',
        source: 'streets',
        paint: { 'line-color': '#000000', 'line-opacity': 0, 'line-width': 14 },
      },
      {
        id: 'vehicles-label',
        type: 'symbol',
        source: 'vehicles',
        minzoom: 10,
        layout: {
          'icon-image': ['concat', 'label:', ['get', 'id']],
          'icon-anchor': 'top',
          'icon-offset': [0, 13],
          // labels hide rather than pile on each other; arrows are always drawn
          'icon-allow-overlap': false,
          'icon-ignore-placement': false,
          'icon-padding': 1,
          'symbol-sort-key': ['get', 'rank'], // plowing vehicles win label space
        },
      },
      {
        id: 'vehicles-icon',
        type: 'symbol',
        source: 'vehicles',
        layout: {
          ...ARROW_LAYOUT,
          'symbol-sort-key': ['-', 2, ['get', 'rank']], // plowing vehicles drawn on top
        },
      },
    ],
  };
}

function fitTo(bbox, animate) {
  if (!map || !validBbox(bbox)) return false;
  const [x0, y0, x1, y1] = bbox;
  if (x1 - x0 < 1e-5 && y1 - y0 < 1e-5) {
    map.jumpTo({ center: [x0, y0], zoom: 15 });
  } else {
    const small = map.getContainer().clientWidth < 500;
    map.fitBounds(
      [
        [x0, y0],
        [x1, y1],
      ],
      { padding: small ? 20 : 40, maxZoom: 17, duration: animate ? 500 : 0 },
    );
  }
  return true;
}

// With no town bbox and no streets, frame the first vehicles we hear about.
function maybeFitToVehicles() {
  if (townBbox || fittedToVehicles || !map || vehicles.size === 0) return;
  fittedToVehicles = true;
  hideMapNote();
  fitTo(bboxOfCoords([...vehicles.values()].map((e) => e.to)), true);
}

class FitControl {
  onAdd() {
    const div = el('div', 'maplibregl-ctrl maplibregl-ctrl-group');
    const b = el('button', 'fit-btn');
    b.type = 'button';
    b.title = 'Show the whole town';
    b.setAttribute('aria-label', 'Show the whole town');
    b.addEventListener('click', () => {
      const bbox = townBbox || bboxOfCoords([...vehicles.values()].map((e) => e.to));
      fitTo(bbox, true);
    });
    div.append(b);
    this.div = div;
    return div;
  }

  onRemove() {
    this.div.remove();
  }
}

function createMap() {
  if (!maplibregl) throw new Error('the map library did not load');
  map = new maplibregl.Map({
    container: 'map',
    style: style(),
    center: [0, 20],
    zoom: 1,
    maxZoom: 19,
    dragRotate: false,
    pitchWithRotate: false,
    attributionControl: { compact: false, customAttribution: OSM_ATTRIBUTION },
  });
  // Lets browser tests (and a curious dispatcher's console) ask the map what it shows.
  document.getElementById('map').plowshareMap = map;
  map.touchZoomRotate.disableRotation();
  map.keyboard.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
  map.addControl(new FitControl(), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  map.on('styleimagemissing', (e) => {
    const make = ICONS[e.id];
    if (make && !map.hasImage(e.id)) map.addImage(e.id, make(), { pixelRatio: PIXEL_RATIO });
  });
  return new Promise((resolve) => {
    map.on('load', () => {
      for (const [name, make] of Object.entries(ICONS)) {
        if (!map.hasImage(name)) map.addImage(name, make(), { pixelRatio: PIXEL_RATIO });
      }
      mapReady = true;
      setupInteraction();
      resolve();
    });
  });
}

function showMapError(text, isNote = false) {
  const p = $('map-error');
  p.textContent = text;
  p.classList.toggle('is-note', isNote);
  p.hidden = false;
}

function hideMapNote() {
  const p = $('map-error');
  if (p.classList.contains('is-note')) p.hidden = true;
}

// ---------------------------------------------------------------- live connection

const conn = $('conn');
let socket = null;
let backoff = BACKOFF_MIN_MS;
let retryTimer = null;
let openedAt = 0;

function setConn(state, detail) {
  conn.className = `conn conn-${state}`;
  conn.querySelector('.conn-text').textContent =
    state === 'live' ? 'live' : state === 'reconnecting' ? 'reconnecting…' : 'connecting…';
  conn.title = detail || '';
}

// The dispatcher's feed is undelayed and names every vehicle, so it needs the dispatch
// token. It comes in the page's fragment (#token=…), which browsers never send to a
// server or put in a Referer.
function dispatchToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  return m ? decodeURIComponent(m[1]) : '';
}

function wsUrl() {
  const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = dispatchToken();
  const query = token ? `?token=${encodeURIComponent(token)}` : '';
  return `${proto}//${window.location.host}/ws/towns/${encodeURIComponent(slug)}${query}`;
}

function connect() {
  retryTimer = null;
  let ws;
  try {
    ws = new WebSocket(wsUrl());
  } catch (err) {
    scheduleReconnect(String(err));
    return;
  }
  socket = ws;
  ws.addEventListener('open', () => {
    if (socket !== ws) return;
    openedAt = Date.now();
    setConn('live', 'receiving live positions');
  });
  ws.addEventListener('message', (ev) => {
    if (socket === ws && typeof ev.data === 'string') onMessage(ev.data);
  });
  ws.addEventListener('close', (ev) => {
    if (socket !== ws) return;
    socket = null;
    if (openedAt && Date.now() - openedAt >= STABLE_CONNECTION_MS) backoff = BACKOFF_MIN_MS;
    openedAt = 0;
    scheduleReconnect(`connection closed (${ev.code})`);
  });
}

function scheduleReconnect(why) {
  if (retryTimer) return;
  const delay = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, backoff * (0.8 + Math.random() * 0.4)));
  backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
  setConn('reconnecting', `${why}; retrying in ${Math.round(delay / 1000)} s`);
  retryTimer = setTimeout(connect, delay);
}

// Back online or back to the tab: don't sit out the rest of a long back-off.
function retryNow() {
  if (!retryTimer || document.hidden) return;
  clearTimeout(retryTimer);
  connect();
}

// ---------------------------------------------------------------- start

async function fetchJson(url) {
  const resp = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!resp.ok) {
    const err = new Error(`HTTP ${resp.status}`);
    err.status = resp.status;
    throw err;
  }
  return resp.json();
}

async function main() {
  setupPanelToggle();
  renderPanel();
  if (!slug) {
    $('town-name').textContent = 'Unknown town';
    showMapError('This address does not name a town.');
    return;
  }
  const base = `/api/towns/${encodeURIComponent(slug)}`;
  const townReq = fetchJson(base);
  const streetsReq = fetchJson(`${base}/streets`);
  streetsReq.catch(() => {}); // handled below; avoid an unhandled-rejection warning meanwhile

  let mapLoaded = Promise.resolve();
  try {
    mapLoaded = createMap();
  } catch (err) {
    map = null;
    showMapError(`The map could not be started (${err.message}). The vehicle list still updates live.`);
  }

  let town;
  try {
    town = await townReq;
  } catch (err) {
    $('town-name').textContent = slug;
    showMapError(
      err.status === 404 ? `There is no town called “${slug}”.` : `Could not load this town (${err.message}).`,
    );
    conn.hidden = true;
    $('panel').hidden = true;
    return;
  }
  const name = typeof town.name === 'string' && town.name ? town.name : slug;
  $('town-name').textContent = name;
  document.title = `${name} – Plowshare live map`;
  if (validBbox(town.bbox)) {
    townBbox = town.bbox;
    fitTo(townBbox, false);
  }

  setConn('connecting');
  connect();
  window.addEventListener('online', retryNow);
  document.addEventListener('visibilitychange', retryNow);
  setInterval(() => {
    renderPanel();
    updatePopupContent();
    drawMap(); // refreshes faded icons for vehicles that went quiet
  }, 1000);

  let streets = null;
  try {
    streets = await streetsReq;
  } catch (err) {
    showMapError(`Could not load the streets (${err.message}); live positions are still shown.`);
  }
  await mapLoaded;
  if (!map) return;
  if (streets && Array.isArray(streets.features)) {
    map.getSource('streets').setData(streets);
    if (!townBbox) {
      const b = bboxOfCoords(geojsonCoords(streets));
      if (b) {
        townBbox = b;
        fitTo(b, false);
      }
    }
  }
  maybeFitToVehicles();
  if (!townBbox && !fittedToVehicles) {
    showMapError('No streets are mapped for this town yet. The map moves to the first vehicle that reports.', true);
  }
  render();
}

main();
