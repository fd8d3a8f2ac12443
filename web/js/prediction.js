// The headline result: the top digit shown large with its confidence, and the server's
// 28×28 preview ("what the model sees").

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

  show({ digit, confidence, preview }) {
    this.#region.dataset.digit = String(digit);
    this.#region.classList.toggle('is-unsure', confidence < UNSURE_BELOW);
    this.#digit.textContent = String(digit);
    this.#label.textContent = confidence < UNSURE_BELOW ? 'Maybe a' : 'Looks like a';
    this.#confidence.textContent = `${Math.round(confidence * 100)}% sure`;
    this.#spoken.textContent = `${this.#label.textContent} ${digit}, ${this.#confidence.textContent}.`;
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
    this.#spoken.textContent = 'Blank pad.';
    this.#preview.hidden = true;
    this.#preview.removeAttribute('src');
  }

  /** While a stroke is in progress, screen readers wait for the settled answer. */
  set busy(busy) { this.#region.setAttribute('aria-busy', String(busy)); }
}
