// Public town page, /t/<slug>/: streets coloured by time since last plowed (vector tiles
// plus live deltas), plows live over /ws/public/<slug> (delayed and pseudonymous as the
// town decides), "find my street" and the answer card. No CDN, no remote glyphs.
import { legendItems } from './status.js';
import { StreetLayers } from './streets.js';
import { PlowLayer } from './plows.js';
import { connectLive } from './live.js';
import { Panel } from './panel.js';
import { parseTime, stormLabel } from './words.js';

const maplibregl = window.maplibregl;
const $ = (id) => document.getElementById(id);
const slug = (/^\/t\/([^/]+)/.exec(window.location.pathname) || [])[1] || null;

const state = { config: null, streets: null, plows: null, map: null, version: null, stormKey: null };

async function getJson(url) {
  const resp = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!resp.ok) throw Object.assign(new Error(`HTTP ${resp.status}`), { status: resp.status });
  return resp.json();
}

function stormKey(storm) {
  return storm ? storm.id : 0;
}

// Time the colours age against: now while a storm runs, its end once it is over.
function nowS() {
  const storm = state.config && state.config.storm;
  const end = storm && !storm.running ? parseTime(storm.ended_at) : NaN;
  return Math.floor((Number.isFinite(end) ? end : Date.now()) / 1000);
}

function tilesUrl() {
  const params = new URLSearchParams({ storm: String(state.stormKey) });
  if (state.version) params.set('v', state.version);
  // Absolute: MapLibre fetches tiles from a worker whose blob: URL has no base to resolve against.
  return `${window.location.origin}${state.config.tiles}?${params}`;
}

function renderTown() {
  const { town, storm, rules } = state.config;
  $('town-name').textContent = town.name;
  document.title = `${town.name} – is my street plowed? – Plowshare`;
  const banner = $('storm-banner');
  banner.textContent = stormLabel(storm, town.timezone);
  banner.classList.toggle('is-ended', Boolean(storm && !storm.running));
  const legend = $('legend-items');
  legend.replaceChildren();
  for (const item of legendItems(rules.bins_min)) {
    const li = document.createElement('li');
    const sw = document.createElement('span');
    sw.className = `swatch-line swatch-${item.kind || 'bin'}`;
    sw.style.setProperty('--c', item.color); // CSSOM, not an inline style attribute
    li.append(sw, document.createTextNode(item.text));
    legend.append(li);
  }
  $('legend-note').textContent =
    (rules.delay_s ? `Plows and service are shown ${Math.round(rules.delay_s / 60)} min late. ` : '') +
    'Thicker lines are plowed first (priority 1). Vehicle names are pseudonyms.';
}

function setConn(s) {
  const c = $('conn');
  c.className = `conn conn-${s}`;
  c.querySelector('.conn-text').textContent = s === 'live' ? 'live' : s === 'reconnecting' ? 'reconnecting…' : 'connecting…';
}

function onMessage(msg) {
  if (msg.town !== undefined && msg.town !== slug) return;
  if (msg.type === 'snapshot') {
    const key = stormKey(msg.storm);
    const stormChanged = state.stormKey !== null && key !== state.stormKey;
    state.stormKey = key;
    state.version = msg.status_version;
    state.config.storm = msg.storm;
    state.config.rules = msg.rules;
    if (state.plows) {
      state.plows.setRules(msg.rules);
      state.plows.snapshot(msg.vehicles);
    }
    if (state.streets) {
      state.streets.setBins(msg.rules.bins_min);
      state.streets.setTiles(tilesUrl(), stormChanged);
      state.streets.setNow(nowS());
    } else {
      ensureStreets();
    }
    renderTown();
    updateSummary();
    if (stormChanged) state.panel.reload();
  } else if (msg.type === 'positions' && state.plows) {
    state.plows.update(msg.vehicles, msg.gone);
    updateSummary();
  } else if (msg.type === 'segments' && Array.isArray(msg.items)) {
    if (state.streets) state.streets.applyDeltas(msg.items);
    state.panel.refreshIf(new Set(msg.items.map((i) => i.id)));
  } else if (msg.type === 'rules') {
    // The storm or the town's rules changed; the snapshot that follows carries them.
    getJson(`/api/towns/${encodeURIComponent(slug)}/public`).then((c) => {
      state.config = { ...state.config, town: c.town, tiles: c.tiles };
      renderTown();
    }, () => {});
  }
}

function updateSummary() {
  const n = state.plows ? state.plows.count() : 0;
  $('plow-count').textContent = n === 0 ? 'No plows out right now.' : `${n} ${n === 1 ? 'plow' : 'plows'} out right now.`;
}

function ensureStreets() {
  if (!state.mapReady || state.streets || state.stormKey === null) return;
  state.streets = new StreetLayers(state.map, { tiles: tilesUrl(), binsMin: state.config.rules.bins_min, nowS: nowS() });
  state.map.moveLayer('plows');
}

function fit(bbox, animate) {
  if (!Array.isArray(bbox) || bbox.length !== 4) return;
  const [x0, y0, x1, y1] = bbox;
  // Not closer than 16: a resident needs the streets around theirs to know where it is.
  if (x1 - x0 < 1e-5 && y1 - y0 < 1e-5) state.map.easeTo({ center: [x0, y0], zoom: 16, duration: animate ? 500 : 0 });
  else state.map.fitBounds([[x0, y0], [x1, y1]], { padding: 40, maxZoom: 16, duration: animate ? 500 : 0 });
}

function createMap(config) {
  const style = config.rules.base_style_url || {
    version: 8,
    sources: {},
    layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#f1efe9' } }],
  };
  const map = new maplibregl.Map({
    container: 'map',
    style,
    center: [0, 20],
    zoom: 1,
    maxZoom: 19,
    dragRotate: false,
    pitchWithRotate: false,
    attributionControl: { compact: true, customAttribution: 'Street data © OpenStreetMap contributors and the town' },
  });
  state.map = map;
  document.getElementById('map').plowshareMap = map; // for tests and curious residents
  map.touchZoomRotate.disableRotation();
  map.keyboard.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  if (config.town.bbox) fit(config.town.bbox, false);
  map.on('load', () => {
    state.plows = new PlowLayer(map);
    if (state.config.rules) state.plows.setRules(state.config.rules);
    state.mapReady = true;
    ensureStreets();
    if (state.pendingSnapshot) onMessage(state.pendingSnapshot);
  });
  map.on('click', (e) => {
    if (!state.streets) return;
    const f = state.streets.featureAt(e.point);
    if (f && typeof f.id === 'number') state.panel.showSegment(f.id);
  });
  map.on('mousemove', (e) => {
    map.getCanvas().style.cursor = state.streets && state.streets.featureAt(e.point) ? 'pointer' : '';
  });
  return map;
}

let marker = null;

async function main() {
  if (!slug) {
    $('town-name').textContent = 'Unknown town';
    return;
  }
  let config;
  try {
    config = await getJson(`/api/towns/${encodeURIComponent(slug)}/public`);
  } catch (err) {
    $('town-name').textContent = slug;
    $('storm-banner').textContent = err.status === 404 ? `There is no town called “${slug}”.` : `Could not load this town (${err.message}).`;
    return;
  }
  state.config = config;
  renderTown();
  state.panel = new Panel({
    slug,
    timeZone: () => state.config.town.timezone,
    onShow: (shown) => {
      if (state.streets) state.streets.select(shown ? shown.ids : []);
      if (marker) marker.remove();
      marker = null;
      if (!shown) return;
      if (shown.point) marker = new maplibregl.Marker({ color: '#1c7ed6' }).setLngLat(shown.point).addTo(state.map);
      fit(shown.bbox, true);
    },
  });
  try {
    createMap(config);
  } catch (err) {
    $('map-error').textContent = `The map could not be started (${err.message}); search still works.`;
    $('map-error').hidden = false;
  }
  connectLive(slug, {
    onState: setConn,
    onMessage: (msg) => {
      // The first snapshot may beat the map's load; it is replayed once the map is up.
      if (msg.type === 'snapshot' && !state.mapReady) state.pendingSnapshot = msg;
      onMessage(msg);
    },
  });
  // Without a live connection the map still shows the streets, just not live.
  setTimeout(() => {
    if (state.stormKey !== null) return;
    state.stormKey = stormKey(state.config.storm);
    ensureStreets();
  }, 5000);
  setInterval(() => {
    if (state.streets) state.streets.setNow(nowS());
    if (state.plows) {
      state.plows.prune(Date.now());
      updateSummary();
    }
  }, 30000);
}

main();
