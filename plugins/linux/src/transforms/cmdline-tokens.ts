/** One argument of a kernel command line and where it sits in the text. */
export interface ArgToken {
  text: string
  start: number
  end: number
}

/**
 * Split a kernel command line into arguments without losing their positions. Blanks inside double quotes belong
 * to the argument (the kernel's rule); single quotes and backslashes are honoured too because the same lines live
 * in grub.cfg, whose script syntax has them.
 */
export function tokenizeArgs(args: string): ArgToken[] {
  const tokens: ArgToken[] = []
  let index = 0
  while (index < args.length) {
    while (index < args.length && /\s/.test(args[index] ?? '')) index++
    if (index >= args.length) break
    const start = index
    let quote = ''
    while (index < args.length) {
      const char = args[index] ?? ''
      if (quote === '' && /\s/.test(char)) break
      if (char === '\\' && quote !== "'") index++
      else if (quote !== '' && char === quote) quote = ''
      else if (quote === '' && (char === '"' || char === "'")) quote = char
      index++
    }
    index = Math.min(index, args.length)
    tokens.push({text: args.slice(start, index), start, end: index})
  }
  return tokens
}

/** `key=value` of an argument, with the quoting it was written in, so a new value goes back the same way. */
export interface ArgParam {
  key: string
  value: string
  /** Put a new value back into the argument with the original quoting. */
  with(value: string): string
}

function unwrap(text: string): {inner: string; quote: string} {
  const first = text[0]
  if (text.length >= 2 && (first === '"' || first === "'") && text.endsWith(first)) return {inner: text.slice(1, -1), quote: first}
  return {inner: text, quote: ''}
}

/** Parse `root=/dev/sda1`, `root="/dev/sda1"` or `"root=/dev/sda1"`; undefined for a flag or anything odder. */
export function parseParam(token: string): ArgParam | undefined {
  const outer = unwrap(token)
  const equals = outer.inner.indexOf('=')
  if (equals <= 0) return undefined
  const key = outer.inner.slice(0, equals)
  if (/["'\\\s]/.test(key)) return undefined
  const value = unwrap(outer.inner.slice(equals + 1))
  if (/["'\\]/.test(value.inner)) return undefined
  return {
    key,
    value: value.inner,
    with: (next) => `${outer.quote}${key}=${value.quote}${next}${value.quote}${outer.quote}`,
  }
}
