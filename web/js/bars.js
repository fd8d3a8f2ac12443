// Ten confidence meters, one per digit. Each update moves the fills (CSS transitions animate
// them, so a stream of predictions reads as motion, not flicker) and marks the top digit.

export class ConfidenceBars {
  #meters = [];

  /** @param {HTMLElement} container an empty element; the meters are created inside it */
  constructor(container) {
    for (let digit = 0; digit < 10; digit++) {
      const meter = document.createElement('div');
      meter.className = 'bar';
      meter.setAttribute('role', 'meter');
      meter.setAttribute('aria-label', `digit ${digit}`);
      meter.setAttribute('aria-valuemin', '0');
      meter.setAttribute('aria-valuemax', '100');
      meter.innerHTML =
        '<span class="bar-value" aria-hidden="true"></span>' +
        '<span class="bar-track" aria-hidden="true"><span class="bar-fill"></span></span>' +
        `<span class="bar-digit" aria-hidden="true">${digit}</span>`;
      container.append(meter);
      this.#meters.push({
        meter,
        fill: meter.querySelector('.bar-fill'),
        value: meter.querySelector('.bar-value'),
      });
    }
    this.reset();
  }

  /** @param {number[]} probabilities ten values summing to 1 */
  show(probabilities) {
    const top = argmax(probabilities);
    this.#meters.forEach(({ meter, fill, value }, digit) => {
      const share = Math.min(1, Math.max(0, probabilities[digit] ?? 0));
      const percent = Math.round(share * 1000) / 10;   // one decimal keeps the sum near 100
      fill.style.transform = `scaleY(${share})`;
      value.textContent = percent >= 1 ? `${Math.round(percent)}` : '';
      meter.setAttribute('aria-valuenow', String(percent));
      meter.setAttribute('aria-valuetext', `${percent.toFixed(0)}%`);
      meter.classList.toggle('is-top', digit === top);
    });
  }

  reset() {
    this.show(new Array(10).fill(0));
    for (const { meter } of this.#meters) meter.classList.remove('is-top');
  }
}

function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
