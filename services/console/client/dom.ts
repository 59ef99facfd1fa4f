/**
 * The page's only way to build DOM: elements from tag, attributes and children, where every string child becomes a
 * text node. No innerHTML anywhere, so whatever the API returns (an endpoint description with markup) shows as text.
 */
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined | null | ((event: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(
      typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child,
    );
  }
}

/** A labelled form control: `<label for>` + the control, in a wrapper. */
export function field(
  label: string,
  control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement,
  hint?: string,
): HTMLElement {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  control.id = id;
  const wrapper = h('div', { class: 'field' }, h('label', { for: id }, label), control);
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute('aria-describedby', hintId);
    append(wrapper, h('small', { id: hintId }, hint));
  }
  return wrapper;
}

/** A table with a caption and header row; cells are children as for {@link h}. */
export function table(caption: string, headers: string[], rows: Child[][]): HTMLTableElement {
  return h(
    'table',
    {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...headers.map((text) => h('th', { scope: 'col' }, text)))),
    h('tbody', {}, ...rows.map((cells) => h('tr', {}, ...cells.map((cell) => h('td', {}, cell))))),
  );
}

/** Whether a view's heading takes the focus: after a navigation, not at page load (the skip link comes first). */
let focusHeading = false;
export const focusHeadingFromNowOn = (): void => {
  focusHeading = true;
};

/**
 * Replaces the main area's content; after a navigation, moves focus to its heading (keyboard and screen-reader
 * users land there).
 */
export function render(main: HTMLElement, title: string, ...children: Child[]): void {
  main.replaceChildren();
  const heading = h('h1', { tabindex: '-1' }, title);
  append(main, heading, ...children);
  // A view finishing after the user moved on draws into its detached container, and leaves title and focus alone.
  if (!main.isConnected) return;
  document.title = `${title} · ampflow console`;
  if (focusHeading) heading.focus();
}

export function say(text: string, kind: 'info' | 'error' = 'info'): void {
  const status = document.getElementById('status');
  if (!status) return;
  status.textContent = text;
  status.className = `status ${kind}`;
}

export const when = (iso: unknown): string =>
  typeof iso === 'string' && iso ? new Date(iso).toLocaleString() : '—';
export const text = (value: unknown): string =>
  value === null || value === undefined || value === '' ? '—' : String(value);
