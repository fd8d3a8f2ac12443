// Turns the strokes into the small PNG the server classifies.
//
// Only the ink's neighbourhood is rendered, at most 128 px a side, so a frame is a few KB
// however large or dense the screen is. Encoding is synchronous (toDataURL): Chromium may
// run canvas.toBlob as a deferred idle task (up to ~1 s late), which would leave the bars on
// a stale digit after pen-up.

import { drawStrokes, inkBounds } from './ink.js';

export const SNAPSHOT_MAX_SIDE = 128;
/** The crop never shrinks below this share of the pad, so a speck stays a speck (the server
 * answers specks as blank) instead of being blown up into a fat blob. */
const MIN_CROP = 0.3;
/** Empty border around the ink, as a share of the ink's longest side. */
const MARGIN = 0.12;

const canvas = document.createElement('canvas');
const ctx = canvas.getContext('2d');

/**
 * @param {Array<Array<{x:number,y:number}>>} strokes in pad units
 * @param {number} penWidth in pad units
 * @returns {{bytes: Uint8Array, dataUrl: string}}
 *   White ink on black, like MNIST: no colour or alpha guessing needed on the server.
 */
export function renderSnapshot(strokes, penWidth) {
  const bounds = inkBounds(strokes);
  let side, originX, originY;
  if (bounds === null) {
    side = 1; originX = 0; originY = 0;
  } else {
    // A square around the ink keeps the aspect ratio and keeps a '1' from being mostly ink.
    const inkSide = Math.max(bounds.maxX - bounds.minX, bounds.maxY - bounds.minY);
    side = Math.max(inkSide + penWidth + 2 * MARGIN * inkSide, MIN_CROP);
    originX = (bounds.minX + bounds.maxX) / 2 - side / 2;
    originY = (bounds.minY + bounds.maxY) / 2 - side / 2;
  }
  const size = bounds === null ? 28 : SNAPSHOT_MAX_SIDE;
  canvas.width = size;   // resizing also resets the context state and pixels
  canvas.height = size;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, size, size);
  const scale = size / side;
  drawStrokes(ctx, strokes, { scale, originX, originY, lineWidth: penWidth * scale, color: '#fff' });
  const dataUrl = canvas.toDataURL('image/png');
  return { bytes: base64ToBytes(dataUrl.slice(dataUrl.indexOf(',') + 1)), dataUrl };
}

function base64ToBytes(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
