/** Every key of a parsed JSON value that is not snake_case (with its path), at any depth; `opaque` paths hold data keys (file names, paths). */
export function nonSnakeKeys(value: unknown, opaque: readonly string[] = [], path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((item) => nonSnakeKeys(item, opaque, `${path}[]`))
  if (value === null || typeof value !== 'object') return []
  if (opaque.includes(path)) return []
  return Object.entries(value).flatMap(([key, item]) => [...(/^[a-z0-9_$]+$/.test(key) ? [] : [`${path}.${key}`]), ...nonSnakeKeys(item, opaque, `${path}.${key}`)])
}
