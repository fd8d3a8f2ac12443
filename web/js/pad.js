// The drawing pad: Pointer Events (mouse, touch, pen) → strokes → a crisp canvas.
//
// Strokes are kept in pad units (0..1 across the side), so the drawing survives resizes and
// rotations and the snapshot can be rendered at any resolution.
//
// Events (this is an EventTarget):
//   'strokestart'                      a pointer went down on the pad
//   'change'  detail {reason}          the drawing changed; reason is one of
//             'draw' (a stroke grew), 'strokeend', 'undo', 'clear'

import { drawStrokes } from './ink.js';

/** Pen width in pad units. MNIST strokes are 2–3 px of a ~20 px digit, and people draw over
 * roughly two thirds of the pad: 0.06 of the pad gives MNIST-like proportions. */
export const PEN_WIDTH = 0.06;
/** Samples closer than this (pad units) add nothing visible; skipping them keeps strokes light. */
const MIN_STEP = 0.002;

export class DrawingPad extends EventTarget {
  #canvas;
  #ctx;
  #penWidth;
  #strokes = [];
  #current = null;       // the stroke being drawn, also the last item of #strokes
  #pointerId = null;     // only the first active pointer draws
  #rect = null;          // pad position, measured at pointer down
  #version = 0;
  #frameRequested = false;
  #inkColor = '#000';

  constructor(canvas, { penWidth = PEN_WIDTH } = {}) {
    super();
    this.#canvas = canvas;
    this.#ctx = canvas.getContext('2d');
    this.#penWidth = penWidth;
    this.#listen();
    this.#trackSize();
    this.#trackColorScheme();
  }

  /** The strokes, in pad units. Treat as read-only. */
  get strokes() { return this.#strokes; }
  get penWidth() { return this.#penWidth; }
  get isEmpty() { return this.#strokes.length === 0; }
  get isDrawing() { return this.#current !== null; }
  get strokeCount() { return this.#strokes.length; }
  /** Increases on every change, so senders can skip drawings they have already sent. */
  get version() { return this.#version; }

  clear() {
    this.#endStroke(false);
    this.#strokes = [];
    this.#changed('clear');
  }

  undo() {
    if (this.isDrawing) this.#endStroke(false);
    if (this.#strokes.length === 0) return;
    this.#strokes.pop();
    this.#changed('undo');
  }

  #listen() {
    const canvas = this.#canvas;
    canvas.addEventListener('pointerdown', (e) => this.#onDown(e));
    canvas.addEventListener('pointermove', (e) => this.#onMove(e));
    canvas.addEventListener('pointerup', (e) => this.#onUp(e));
    canvas.addEventListener('pointercancel', (e) => this.#onUp(e));
    canvas.addEventListener('lostpointercapture', (e) => this.#onUp(e));
    // Long-press menus and legacy touch scrolling (old iOS ignores touch-action) would
    // interrupt a stroke.
    canvas.addEventListener('contextmenu', (e) => e.preventDefault());
    for (const type of ['touchstart', 'touchmove']) {
      canvas.addEventListener(type, (e) => e.preventDefault(), { passive: false });
    }
  }

  #onDown(e) {
    if (this.#pointerId !== null) return;
    if (e.pointerType === 'mouse' && e.button !== 0) return;
    e.preventDefault();   // no text selection, no focus change, no emulated mouse events
    this.#pointerId = e.pointerId;
    try {
      this.#canvas.setPointerCapture(e.pointerId);  // the stroke ends cleanly off the pad
    } catch { /* the pointer is already gone; the up event will follow */ }
    this.#rect = this.#canvas.getBoundingClientRect();
    this.#current = [this.#toPad(e)];
    this.#strokes.push(this.#current);
    this.dispatchEvent(new Event('strokestart'));
    this.#changed('draw');
  }

  #onMove(e) {
    if (e.pointerId !== this.#pointerId || this.#current === null) return;
    // Pens and fast mice report more samples than frames; the coalesced ones keep curves true.
    const samples = e.getCoalescedEvents?.() ?? [];
    let added = false;
    for (const sample of samples.length > 0 ? samples : [e]) added = this.#addPoint(sample) || added;
    if (added) this.#changed('draw');
  }

  #onUp(e) {
    if (e.pointerId !== this.#pointerId) return;
    // A cancelled pointer has no position (Chromium and Safari report 0, 0): only an up adds one.
    if (e.type === 'pointerup') this.#addPoint(e);
    this.#endStroke(true);
  }

  #addPoint(e) {
    const point = this.#toPad(e);
    const last = this.#current[this.#current.length - 1];
    if (Math.hypot(point.x - last.x, point.y - last.y) < MIN_STEP) return false;
    this.#current.push(point);
    return true;
  }

  #endStroke(notify) {
    if (this.#pointerId === null) return;
    const pointerId = this.#pointerId;
    this.#pointerId = null;
    this.#current = null;
    if (this.#canvas.hasPointerCapture?.(pointerId)) this.#canvas.releasePointerCapture(pointerId);
    if (notify) this.#changed('strokeend');
  }

  #toPad(e) {
    const rect = this.#rect;
    // Clamped: with pointer capture the pointer may leave the pad; ink stays on it.
    const clamp = (v) => Math.min(1, Math.max(0, v));
    return { x: clamp((e.clientX - rect.left) / rect.width), y: clamp((e.clientY - rect.top) / rect.height) };
  }

  #changed(reason) {
    this.#version++;
    this.#requestRender();
    this.dispatchEvent(new CustomEvent('change', { detail: { reason } }));
  }

  #requestRender() {
    if (this.#frameRequested) return;
    this.#frameRequested = true;
    requestAnimationFrame(() => {
      this.#frameRequested = false;
      this.#render();
    });
  }

  #render() {
    const { width } = this.#canvas;
    this.#ctx.clearRect(0, 0, width, this.#canvas.height);
    drawStrokes(this.#ctx, this.#strokes, {
      scale: width, lineWidth: this.#penWidth * width, color: this.#inkColor,
    });
    this.#canvas.classList.toggle('has-ink', this.#strokes.length > 0);
  }

  /** Keeps the backing store at device pixels, so lines stay sharp on high-DPI screens. */
  #trackSize() {
    const resize = () => {
      const side = Math.round(this.#canvas.clientWidth * window.devicePixelRatio);
      if (side > 0 && side !== this.#canvas.width) {
        this.#canvas.width = side;
        this.#canvas.height = side;
        this.#render();
      }
    };
    new ResizeObserver(resize).observe(this.#canvas);
    // The ratio also changes without a resize: browser zoom, a window dragged to another screen.
    const watchRatio = () => {
      matchMedia(`(resolution: ${window.devicePixelRatio}dppx)`)
        .addEventListener('change', () => { resize(); watchRatio(); }, { once: true });
    };
    watchRatio();
  }

  /** Ink colour comes from CSS (--ink) and follows the light/dark scheme. */
  #trackColorScheme() {
    const update = () => {
      this.#inkColor = getComputedStyle(this.#canvas).getPropertyValue('--ink').trim() || '#000';
      this.#requestRender();
    };
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', update);
    update();
  }
}
