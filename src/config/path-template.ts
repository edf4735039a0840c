// The path template syntax of `match.path` ("/users/:id/orders"): the config language owns it,
// so the unreachable-rule check and the route matcher split templates the same way.

/** Segments of a pattern or path, without the leading "" (and without a trailing "" for patterns). */
export function patternSegments(pattern: string): string[] {
  const segments = pattern.split('/').slice(1);
  if (segments.at(-1) === '') segments.pop();
  return segments;
}
