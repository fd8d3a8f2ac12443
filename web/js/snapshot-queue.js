// Sends snapshots in the order they were rendered, although encoding one takes time (async).
//
// One snapshot is encoded at a time; the others wait. A live snapshot still waiting when a
// newer one arrives is dropped, since the newer one shows more of the same drawing; a final
// one (pen-up, undo, clear) is never dropped, so the server always sees the settled drawing.

export class SnapshotQueue {
  #send;
  #waiting = [];     // {snapshot, options, resolve}, oldest first; only the newest can be live
  #busy = false;     // a snapshot is being encoded or sent

  /** @param {(frame: object, options: {final?: boolean, barrier?: boolean}) => boolean} send */
  constructor(send) {
    this.#send = send;
  }

  /** True while a snapshot is waiting or being encoded: the newest drawing is not sent yet. */
  get busy() { return this.#busy; }

  /**
   * Queues a snapshot ({encode() → Promise<frame>}) with its send options. Resolves to what
   * `send` returned, or to false when a newer snapshot replaced this one before it was sent.
   */
  push(snapshot, options = {}) {
    return new Promise((resolve) => {
      const newest = this.#waiting.at(-1);
      if (newest !== undefined && !newest.options.final) {
        this.#waiting.pop();
        newest.resolve(false);
        // Answers older than the dropped snapshot are still stale.
        options = { ...options, barrier: Boolean(options.barrier || newest.options.barrier) };
      }
      this.#waiting.push({ snapshot, options, resolve });
      if (!this.#busy) this.#drain();
    });
  }

  async #drain() {
    this.#busy = true;
    while (this.#waiting.length > 0) {
      const { snapshot, options, resolve } = this.#waiting.shift();
      // A snapshot that cannot be encoded is lost alone; the ones behind it still go out.
      const frame = await snapshot.encode().catch(() => null);
      resolve(frame !== null && this.#send(frame, options));
    }
    this.#busy = false;
  }
}
