// Web Storage that never throws. Where a browser blocks storage (every cookie blocked, some
// managed school devices) each access throws; drawing and classes must still work there, only
// without being remembered across reloads.

function guarded(area) {
  return Object.freeze({
    /** The stored string, or null where there is none or storage is blocked. */
    get(key) {
      try { return window[area].getItem(key); } catch { return null; }
    },
    set(key, value) {
      try { window[area].setItem(key, value); } catch { /* blocked or full: not remembered */ }
    },
    remove(key) {
      try { window[area].removeItem(key); } catch { /* blocked: nothing was remembered */ }
    },
  });
}

/** This tab's storage: what a reload keeps. */
export const tabStorage = guarded('sessionStorage');
/** This site's storage: what the next visit keeps. */
export const siteStorage = guarded('localStorage');
