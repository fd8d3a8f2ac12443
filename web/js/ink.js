// Stroke geometry shared by the on-screen pad and the snapshots sent to the server, so the
// model sees exactly the curves the user sees.
//
// A stroke is an array of points {x, y} in pad units: 0..1 across the pad's side.

/** Ink bounding box of the strokes in pad units (stroke centre lines), or null if blank. */
export function inkBounds(strokes) {
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const stroke of strokes) {
    for (const { x, y } of stroke) {
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
  }
  return minX === Infinity ? null : { minX, minY, maxX, maxY };
}

/**
 * Draws strokes as smooth curves: quadratic segments through the midpoints of consecutive
 * samples, so fast movements (few samples) still look round instead of polygonal.
 * `scale` maps pad units to canvas pixels; (originX, originY) is the pad point drawn at 0,0.
 */
export function drawStrokes(ctx, strokes, { scale, originX = 0, originY = 0, lineWidth, color }) {
  const px = (p) => (p.x - originX) * scale;
  const py = (p) => (p.y - originY) * scale;
  ctx.lineWidth = lineWidth;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  for (const points of strokes) {
    if (points.length === 0) continue;
    ctx.beginPath();
    if (points.length === 1) {
      // A tap: a round dot as wide as the pen.
      ctx.arc(px(points[0]), py(points[0]), lineWidth / 2, 0, Math.PI * 2);
      ctx.fill();
      continue;
    }
    ctx.moveTo(px(points[0]), py(points[0]));
    for (let i = 1; i < points.length - 1; i++) {
      const p = points[i], next = points[i + 1];
      ctx.quadraticCurveTo(px(p), py(p), (px(p) + px(next)) / 2, (py(p) + py(next)) / 2);
    }
    const last = points[points.length - 1];
    ctx.lineTo(px(last), py(last));
    ctx.stroke();
  }
}
