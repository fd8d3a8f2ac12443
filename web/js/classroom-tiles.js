// The dashboard's grid: one tile per student, kept in step with the server's snapshot and
// deltas. Names and every other value reach the page through textContent / attributes only,
// never as HTML: a name like "<img onerror=…>" shows as those characters.

export class TileGrid {
  #container;
  #template;
  #onRemove;
  #tiles = new Map();     // student id → {element, data}
  #prompt = null;

  constructor({ container, template, onRemove }) {
    this.#container = container;
    this.#template = template;
    this.#onRemove = onRemove;
  }

  get size() { return this.#tiles.size; }

  /** Replaces every tile (the snapshot after connecting). */
  reset(tiles) {
    for (const { element } of this.#tiles.values()) element.remove();
    this.#tiles.clear();
    this.apply(tiles, []);
  }

  apply(changed, removed) {
    for (const id of removed) {
      this.#tiles.get(id)?.element.remove();
      this.#tiles.delete(id);
    }
    for (const data of changed) {
      const tile = this.#tiles.get(data.id) ?? this.#add(data);
      tile.data = data;
      this.#render(tile);
    }
  }

  set prompt(digit) {
    if (digit === this.#prompt) return;
    this.#prompt = digit;
    for (const tile of this.#tiles.values()) this.#render(tile);
  }

  #add(data) {
    const element = this.#template.content.firstElementChild.cloneNode(true);
    element.dataset.student = data.id;
    element.querySelector('.tile-name').textContent = data.name;
    element.querySelector('.tile-name').title = data.name;
    const remove = element.querySelector('.tile-remove');
    remove.setAttribute('aria-label', `Remove ${data.name}`);
    remove.title = `Remove ${data.name} from the class`;
    remove.addEventListener('click', () => this.#onRemove(data.id, data.name));
    // Newcomers go last, so tiles keep their places while the class joins.
    this.#container.append(element);
    const tile = { element, data };
    this.#tiles.set(data.id, tile);
    return tile;
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
  }
}
