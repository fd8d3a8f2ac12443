// Runs a task at most once per interval: the first request runs at once, later ones within
// the interval coalesce into one trailing run at the interval's end.

export class Throttle {
  #intervalMs;
  #task;
  #lastRun = -Infinity;
  #timer = null;

  constructor(intervalMs, task) {
    this.#intervalMs = intervalMs;
    this.#task = task;
  }

  request() {
    if (this.#timer !== null) return;
    const wait = this.#lastRun + this.#intervalMs - performance.now();
    if (wait <= 0) this.flush();
    else this.#timer = setTimeout(() => this.flush(), wait);
  }

  /** Runs the task now (e.g. at pen-up) and drops any pending trailing run. */
  flush() {
    this.cancel();
    this.#lastRun = performance.now();
    this.#task();
  }

  cancel() {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
