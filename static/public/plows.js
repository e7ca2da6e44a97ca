// Plows on the public map: pseudonymous, already delayed and filtered by the server; drawn
// as arrows turned to their heading. A plow not heard from for the town's idle time goes.
import { ARROW_LAYOUT, arrowImage } from '../arrow.js';
import { parseTime } from './words.js';

const PIXEL_RATIO = 2;
const DOWN = '#e8590c';
const UP = '#495057';

export class PlowLayer {
  constructor(map) {
    this.map = map;
    this.plows = new Map(); // public id -> {v, t}
    this.idleMs = null;
    this.delayMs = 0;
    map.addImage('plow-down', arrowImage(DOWN, PIXEL_RATIO), { pixelRatio: PIXEL_RATIO });
    map.addImage('plow-up', arrowImage(UP, PIXEL_RATIO), { pixelRatio: PIXEL_RATIO });
    map.addSource('plows', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    map.addLayer({
      id: 'plows',
      type: 'symbol',
      source: 'plows',
      layout: { ...ARROW_LAYOUT },
    });
  }

  setRules(rules) {
    this.idleMs = typeof rules.idle_after_s === 'number' ? rules.idle_after_s * 1000 : null;
    this.delayMs = (rules.delay_s || 0) * 1000;
  }

  snapshot(list) {
    this.plows.clear();
    this.update(list, []);
  }

  update(list, gone) {
    for (const id of gone || []) this.plows.delete(String(id));
    for (const v of list || []) {
      if (!v || typeof v.lat !== 'number' || typeof v.lon !== 'number') continue;
      const id = String(v.id);
      const t = parseTime(v.time);
      const prev = this.plows.get(id);
      if (prev && Number.isFinite(prev.t) && t < prev.t) continue; // keep the newer fix
      this.plows.set(id, { v, t });
    }
    this.draw();
  }

  // Silent plows go, measured in the public's time (now less the delay).
  prune(now) {
    if (this.idleMs === null) return;
    let changed = false;
    for (const [id, p] of this.plows) {
      if (now - this.delayMs - p.t > this.idleMs) {
        this.plows.delete(id);
        changed = true;
      }
    }
    if (changed) this.draw();
  }

  draw() {
    const features = [...this.plows.entries()].map(([id, { v }]) => ({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [v.lon, v.lat] },
      properties: {
        id,
        label: v.label,
        icon: v.plow === true || v.spreader === true ? 'plow-down' : 'plow-up',
        heading: typeof v.heading === 'number' ? v.heading : 0,
      },
    }));
    this.map.getSource('plows').setData({ type: 'FeatureCollection', features });
  }

  count() {
    return this.plows.size;
  }
}
