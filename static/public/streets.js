// The street-status layers: vector tiles from /tiles/<town>/…, coloured on the page, with
// live deltas applied as feature-state keyed by segment id (the tile's feature id).
import { colorExpression, isServiced, PRIORITY, widthExpression, COLORS } from './status.js';
import { parseTime } from './words.js';

const SOURCE = 'status';
const LAYER = 'streets'; // source-layer name in the tiles, and the main style layer's id

export class StreetLayers {
  constructor(map, { tiles, binsMin, nowS }) {
    this.map = map;
    this.binsMin = binsMin;
    this.nowS = nowS;
    this.tiles = tiles;
    map.addSource(SOURCE, { type: 'vector', tiles: [tiles], minzoom: 6, maxzoom: 15 });
    const layout = { 'line-cap': 'round', 'line-join': 'round', 'line-sort-key': ['-', 10, PRIORITY] };
    // Every street, dashed grey underneath: what no service covers stays visibly dashed,
    // so "not yet" does not rest on colour alone.
    map.addLayer({
      id: 'streets-base',
      type: 'line',
      source: SOURCE,
      'source-layer': LAYER,
      layout: { 'line-join': 'round' },
      paint: { 'line-color': COLORS.none, 'line-width': widthExpression(), 'line-dasharray': [1.2, 1] },
    });
    map.addLayer({
      id: LAYER,
      type: 'line',
      source: SOURCE,
      'source-layer': LAYER,
      layout,
      paint: {
        'line-color': colorExpression(binsMin, nowS),
        'line-width': widthExpression(),
        'line-opacity': ['case', isServiced(), 1, 0],
      },
    });
    // Salted as well as plowed: a white dotted centre line on top.
    map.addLayer({
      id: 'streets-salt',
      type: 'line',
      source: SOURCE,
      'source-layer': LAYER,
      minzoom: 13,
      layout: { 'line-join': 'round' },
      paint: {
        'line-color': '#ffffff',
        'line-width': 2,
        'line-dasharray': [0.5, 2.5],
        'line-opacity': [
          'case',
          ['all', ['>', ['coalesce', ['feature-state', 'salted'], ['get', 'salted'], 0], 0],
            ['>', ['coalesce', ['feature-state', 'plowed'], ['get', 'plowed'], 0], 0]], 0.9, 0,
        ],
      },
    });
    map.addLayer({
      id: 'streets-selected',
      type: 'line',
      source: SOURCE,
      'source-layer': LAYER,
      filter: ['in', ['id'], ['literal', []]],
      paint: { 'line-color': '#1c7ed6', 'line-width': widthExpression(8), 'line-opacity': 0.45 },
    }, 'streets-base');
  }

  setNow(nowS) {
    this.nowS = nowS;
    this.map.setPaintProperty(LAYER, 'line-color', colorExpression(this.binsMin, nowS));
  }

  setBins(binsMin) {
    this.binsMin = binsMin;
    this.setNow(this.nowS);
  }

  // A new storm, a new status version: fetch tiles afresh (the URL carries both).
  setTiles(url, clearState) {
    if (url === this.tiles) return;
    this.tiles = url;
    if (clearState) this.map.removeFeatureState({ source: SOURCE, sourceLayer: LAYER });
    this.map.getSource(SOURCE).setTiles([url]);
  }

  // items: live `segments` items {id, last_service, last_plowed, last_salted, passes}
  applyDeltas(items) {
    for (const item of items) {
      if (!item || typeof item.id !== 'number') continue;
      const state = { passes: item.passes };
      for (const [key, field] of [['last', 'last_service'], ['plowed', 'last_plowed'], ['salted', 'last_salted']]) {
        const t = parseTime(item[field]);
        if (Number.isFinite(t)) state[key] = Math.floor(t / 1000);
      }
      this.map.setFeatureState({ source: SOURCE, sourceLayer: LAYER, id: item.id }, state);
    }
  }

  select(ids) {
    this.map.setFilter('streets-selected', ['in', ['id'], ['literal', ids]]);
  }

  featureAt(point) {
    const box = [
      [point.x - 8, point.y - 8],
      [point.x + 8, point.y + 8],
    ];
    return this.map.queryRenderedFeatures(box, { layers: ['streets-base'] })[0] || null;
  }
}
