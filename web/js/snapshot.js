// Turns the strokes into the small image the server classifies.
//
// Only the ink's neighbourhood is rendered, at most 128 px a side, so a frame is a few KB
// however large or dense the screen is. Where the browser has CompressionStream, the frame is
// a grey frame (docs/protocol.md): the canvas is grey, so one byte a pixel, deflated, is a
// quarter of the RGBA PNG's bytes. Elsewhere it is that PNG, written synchronously
// (toDataURL): Chromium may run canvas.toBlob as a deferred idle task (up to ~1 s late).

import { drawStrokes, inkBounds } from './ink.js';

export const SNAPSHOT_MAX_SIDE = 128;
/** The crop never shrinks below this share of the pad, so a speck stays a speck (the server
 * answers specks as blank) instead of being blown up into a fat blob. */
const MIN_CROP = 0.3;
/** Empty border around the ink, as a share of the ink's longest side. */
const MARGIN = 0.12;
const GREY_FRAMES = typeof CompressionStream === 'function';
const GREY_MAGIC = [0x44, 0x53, 0x47, 0x31];  // 'DSG1'

const canvas = document.createElement('canvas');
// Every snapshot is read back, so a canvas kept in memory is the fast one.
const ctx = canvas.getContext('2d', { willReadFrequently: true });

/**
 * @typedef {{bytes: Uint8Array, contentType: string}} Frame  the bytes to send, and their type
 *   for an HTTP body
 * @typedef {{encode: () => Promise<Frame>}} Snapshot  the pixels, captured when rendered
 */

/**
 * @param {Array<Array<{x:number,y:number}>>} strokes in pad units
 * @param {number} penWidth in pad units
 * @returns {Snapshot} white ink on black, like MNIST: no colour or alpha guessing on the server.
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
  return GREY_FRAMES ? greySnapshot(size) : pngSnapshot();
}

function greySnapshot(size) {
  const rgba = ctx.getImageData(0, 0, size, size).data;
  // Opaque white on black: the red channel is the grey level.
  const grey = new Uint8Array(size * size);
  for (let i = 0; i < grey.length; i++) grey[i] = rgba[4 * i];
  return { encode: () => greyFrame(size, size, grey) };
}

async function greyFrame(width, height, grey) {
  const deflated = new Uint8Array(
    await new Response(new Blob([grey]).stream().pipeThrough(new CompressionStream('deflate'))).arrayBuffer(),
  );
  const bytes = new Uint8Array(8 + deflated.length);
  const header = new DataView(bytes.buffer);
  bytes.set(GREY_MAGIC);
  header.setUint16(4, width);    // big-endian, DataView's default
  header.setUint16(6, height);
  bytes.set(deflated, 8);
  return { bytes, contentType: 'application/octet-stream' };
}

function pngSnapshot() {
  const dataUrl = canvas.toDataURL('image/png');
  const frame = { bytes: base64ToBytes(dataUrl.slice(dataUrl.indexOf(',') + 1)), contentType: 'image/png' };
  return { encode: async () => frame };
}

function base64ToBytes(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
