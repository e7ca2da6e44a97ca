// A plow arrow pointing up (north), drawn on a canvas (no remote sprite); MapLibre
// rotates it by the heading. Shared by the dispatcher's fleet map and the public map.
// Layout of a symbol layer drawing that arrow per feature: 'icon' names the image,
// 'heading' turns it; arrows never hide each other or the labels.
export const ARROW_LAYOUT = Object.freeze({
  'icon-image': ['get', 'icon'],
  'icon-rotate': ['get', 'heading'],
  'icon-rotation-alignment': 'map',
  'icon-allow-overlap': true,
  'icon-ignore-placement': true,
});

export function arrowImage(color, pixelRatio, { outline = false } = {}) {
  const size = 30;
  const c = document.createElement('canvas');
  c.width = c.height = Math.ceil(size * pixelRatio);
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.scale(pixelRatio, pixelRatio);
  ctx.translate(size / 2, size / 2);
  ctx.beginPath();
  ctx.moveTo(0, -12);
  ctx.lineTo(9, 10);
  ctx.lineTo(0, 5);
  ctx.lineTo(-9, 10);
  ctx.closePath();
  ctx.lineJoin = 'round';
  ctx.lineWidth = 3;
  ctx.strokeStyle = '#ffffff';
  ctx.stroke();
  ctx.fillStyle = color;
  ctx.fill();
  if (outline) {
    // a thin dark edge keeps grey arrows visible over grey streets
    ctx.lineWidth = 1;
    ctx.strokeStyle = 'rgba(0,0,0,0.35)';
    ctx.stroke();
  }
  return ctx.getImageData(0, 0, c.width, c.height);
}
