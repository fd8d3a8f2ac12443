// An EventTarget whose events carry their payload in `detail`: subclasses emit, and listeners
// get the payload itself and a function that unsubscribes them.

export class DetailEvents extends EventTarget {
  /** Calls listener(detail) for each `type` event; returns the function that stops it. */
  on(type, listener) {
    const wrapped = (e) => listener(e.detail);
    this.addEventListener(type, wrapped);
    return () => this.removeEventListener(type, wrapped);
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }
}
