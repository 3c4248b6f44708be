/** The value at a dotted path (`choices.0.delta.content`); undefined when any step is missing. */
export function getPath(value: unknown, path: string): unknown {
  let current = value;
  for (const key of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/**
 * Fills a request template: a string that is exactly `{{path}}` becomes the value
 * itself (arrays and numbers keep their type); `{{path}}` inside a longer string is
 * interpolated; keys whose value is undefined are left out.
 */
export function renderTemplate(template: unknown, values: Record<string, unknown>): unknown {
  if (typeof template === 'string') {
    const whole = /^\{\{\s*([\w.]+)\s*\}\}$/.exec(template);
    if (whole) return getPath(values, whole[1]!);
    return template.replace(/\{\{\s*([\w.]+)\s*\}\}/g, (_m, path: string) => {
      const value = getPath(values, path);
      return value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
    });
  }
  if (Array.isArray(template)) return template.map((item) => renderTemplate(item, values));
  if (template !== null && typeof template === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(template)) {
      const rendered = renderTemplate(item, values);
      if (rendered !== undefined) out[key] = rendered;
    }
    return out;
  }
  return template;
}
