/** The explorer page's two DOM helpers. Browser only. */

/** `h('div', {class: 'x'}, child, ...)`: a small element builder. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

/** Loads a script of the page's folder (file:// pages cannot fetch, but they can load scripts). */
export function loadScript(src: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = h('script', { src });
    s.onload = () => (s.remove(), resolve());
    s.onerror = () => reject(new Error(`${src} did not load: is the explorer folder complete?`));
    document.head.append(s);
  });
}
