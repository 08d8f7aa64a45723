// The few DOM helpers the dashboard needs (no framework: the page is a handful of tables and
// forms). Text is always set as text, never as HTML, so no key or value can inject markup.

/** The element with this id; a missing one is a bug in index.html. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`index.html has no #${id}`);
  return found as T;
}

/** A new element with text content and attributes. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, text = '', attrs: Record<string, string> = {}): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text !== '') node.textContent = text;
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

/** A table cell; numbers are right-aligned. */
export function cell(value: string | number | null | undefined): HTMLTableCellElement {
  const td = el('td', value === null || value === undefined ? '—' : String(value));
  if (typeof value === 'number') td.className = 'num';
  return td;
}

/** Says `message` in a status line (empty clears it). */
export function say(target: HTMLElement, message: string): void {
  target.textContent = message;
}

/** At most `chars` characters of `text`, with an ellipsis when cut. */
export function preview(text: string, chars = 80): string {
  return text.length <= chars ? text : `${text.slice(0, chars)}…`;
}
