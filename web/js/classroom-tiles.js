// The dashboard's grid: one tile per student, kept in step with the server's snapshot and
// deltas, and sized so the whole class fits the projector. Names and every other value reach
// the page through textContent / attributes only, never as HTML: a name like "<img onerror=…>"
// shows as those characters.

const GAP_PX = 12;
const TILE_ASPECT = 1.25;       // width / height that suits preview + digit above a name
const MIN_ROW_PX = 72;          // below this a tile is unreadable: the page scrolls instead
const MAX_ROW_SHARE = 0.45;     // a class of two does not get two wall-sized tiles
const CONFIRM_MS = 4000;

/**
 * Columns and row height that give n tiles of aspect TILE_ASPECT the largest size inside
 * width × height; rows never shorter than MIN_ROW_PX (then the page scrolls).
 */
export function fitTiles(n, width, height) {
  let best = null;
  for (let cols = 1; cols <= Math.max(1, n); cols++) {
    const rows = Math.ceil(Math.max(1, n) / cols);
    const w = (width - (cols - 1) * GAP_PX) / cols;
    const h = (height - (rows - 1) * GAP_PX) / rows;
    const row = Math.min(h, w / TILE_ASPECT, height * MAX_ROW_SHARE);
    if (best === null || row > best.row) best = { cols, row, tile: Math.min(w, row * TILE_ASPECT * 1.4) };
  }
  if (best.row >= MIN_ROW_PX) return best;
  // Too many to fit readably: as many smallest tiles per row as the width takes, and scroll.
  const cols = Math.max(1, Math.floor((width + GAP_PX) / (MIN_ROW_PX * TILE_ASPECT + GAP_PX)));
  return { cols, row: MIN_ROW_PX, tile: (width - (cols - 1) * GAP_PX) / cols };
}

export class TileGrid {
  #container;
  #template;
  #onRemove;
  #onChange;
  #tiles = new Map();     // student id → {element, data}
  #prompt = null;

  /** onChange({joined, left}): names of students who arrived or left in one update. */
  constructor({ container, template, onRemove, onChange = () => {} }) {
    this.#container = container;
    this.#template = template;
    this.#onRemove = onRemove;
    this.#onChange = onChange;
    new ResizeObserver(() => this.layout()).observe(container.parentElement);
    window.addEventListener('resize', () => this.layout());
  }

  /** Replaces every tile (the snapshot after connecting), in the server's seat order. */
  reset(tiles) {
    for (const { element } of this.#tiles.values()) element.remove();
    this.#tiles.clear();
    this.#apply(tiles, []);
  }

  apply(changed, removed) {
    const { joined, left } = this.#apply(changed, removed);
    if (joined.length > 0 || left.length > 0) this.#onChange({ joined, left });
  }

  set prompt(digit) {
    if (digit === this.#prompt) return;
    this.#prompt = digit;
    for (const tile of this.#tiles.values()) this.#render(tile);
  }

  /** Sizes the grid so every tile fits between the grid's top and the window's bottom. */
  layout() {
    const top = this.#container.getBoundingClientRect().top + window.scrollY;
    const bottomPadding = parseFloat(getComputedStyle(document.body).paddingBottom) || 0;
    const height = Math.max(MIN_ROW_PX, window.innerHeight - top - bottomPadding - 20);
    const { cols, row, tile } = fitTiles(this.#tiles.size, this.#container.clientWidth, height);
    this.#container.style.setProperty('--cols', String(cols));
    this.#container.style.setProperty('--row', `${Math.floor(row)}px`);
    this.#container.style.setProperty('--tile', `${Math.floor(tile)}px`);
  }

  #apply(changed, removed) {
    const joined = [];
    const left = [];
    for (const id of removed) {
      const tile = this.#tiles.get(id);
      if (!tile) continue;
      left.push(tile.data.name);
      if (tile.element.contains(document.activeElement)) this.#focusNear(tile.element);
      tile.element.remove();
      this.#tiles.delete(id);
    }
    for (const data of changed) {
      let tile = this.#tiles.get(data.id);
      if (!tile) {
        tile = this.#add(data);
        joined.push(data.name);
      }
      tile.data = data;
      this.#render(tile);
    }
    if (joined.length > 0 || left.length > 0 || this.#container.style.getPropertyValue('--cols') === '') this.layout();
    return { joined, left };
  }

  /** Keeps keyboard focus in the grid when the tile holding it goes (its Remove was pressed). */
  #focusNear(element) {
    const neighbour = element.nextElementSibling ?? element.previousElementSibling;
    (neighbour?.querySelector('.tile-remove') ?? this.#container).focus();
  }

  #add(data) {
    const element = this.#template.content.firstElementChild.cloneNode(true);
    element.dataset.student = data.id;
    element.querySelector('.tile-name').textContent = data.name;
    element.querySelector('.tile-name').title = data.name;
    const remove = element.querySelector('.tile-remove');
    this.#armRemove(remove, data);
    // Newcomers go last, so tiles keep their places while the class joins.
    this.#container.append(element);
    const tile = { element, data };
    this.#tiles.set(data.id, tile);
    return tile;
  }

  /** Two presses to remove: the first turns × into "Remove?", which reverts after a while. */
  #armRemove(button, data) {
    let timer = null;
    const reset = () => {
      clearTimeout(timer);
      button.dataset.confirm = 'false';
      button.textContent = '×';
      button.setAttribute('aria-label', `Remove ${data.name}`);
      button.title = `Remove ${data.name} from the class`;
    };
    reset();
    button.addEventListener('click', () => {
      if (button.dataset.confirm === 'true') {
        reset();
        this.#onRemove(data.id, data.name);
        return;
      }
      button.dataset.confirm = 'true';
      button.textContent = 'Remove?';
      button.setAttribute('aria-label', `Press again to remove ${data.name}`);
      timer = setTimeout(reset, CONFIRM_MS);
    });
  }

  #render({ element, data }) {
    const drawn = data.digit !== null;
    const preview = element.querySelector('.tile-preview');
    if (data.preview) preview.src = `data:image/png;base64,${data.preview}`;
    preview.hidden = !data.preview;
    preview.alt = drawn ? `What the model sees of ${data.name}'s drawing` : '';
    element.querySelector('.tile-digit').textContent = drawn ? String(data.digit) : '–';
    element.querySelector('.tile-confidence').textContent = drawn ? `${Math.round(data.confidence * 100)}%` : '';
    element.dataset.digit = drawn ? String(data.digit) : '';
    element.dataset.match = this.#prompt === null || !drawn ? 'none' : String(data.digit === this.#prompt);
    // A student whose phone slept keeps the seat (and its place), shown dimmed until back.
    element.dataset.away = String(Boolean(data.away));
  }
}
