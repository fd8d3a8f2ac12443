// The headline result: the top digit shown large with its confidence, and the server's
// 28×28 preview ("what the model sees"). The spoken sentence is a live region written only
// for the answer to a finished drawing, and only when it changes.

import { setText } from './status.js';

const UNSURE_BELOW = 0.5;   // below this the digit is shown muted: the model is guessing

export class PredictionView {
  #region;
  #digit;
  #label;
  #confidence;
  #preview;
  #spoken;

  constructor({ region, digit, label, confidence, preview, spoken }) {
    this.#region = region;
    this.#digit = digit;
    this.#label = label;
    this.#confidence = confidence;
    this.#preview = preview;
    this.#spoken = spoken;
  }

  /** settled: this answers the finished drawing (pen up, nothing newer sent): say it. */
  show({ digit, confidence, preview }, { settled = true } = {}) {
    this.#region.dataset.digit = String(digit);
    this.#region.classList.toggle('is-unsure', confidence < UNSURE_BELOW);
    this.#digit.textContent = String(digit);
    this.#label.textContent = confidence < UNSURE_BELOW ? 'Maybe a' : 'Looks like a';
    this.#confidence.textContent = `${Math.round(confidence * 100)}% sure`;
    if (settled) setText(this.#spoken, `${this.#label.textContent} ${digit}, ${this.#confidence.textContent}.`);
    if (preview) {
      this.#preview.src = `data:image/png;base64,${preview}`;
      this.#preview.hidden = false;
    }
  }

  reset() {
    this.#region.dataset.digit = '';
    this.#region.classList.remove('is-unsure');
    this.#digit.textContent = '?';
    this.#label.textContent = 'Draw a digit';
    this.#confidence.textContent = '';
    setText(this.#spoken, 'Blank pad.');
    this.#preview.hidden = true;
    this.#preview.removeAttribute('src');
  }

  /** While a stroke is in progress, screen readers wait for the settled answer. */
  set busy(busy) { this.#spoken.setAttribute('aria-busy', String(busy)); }
}
