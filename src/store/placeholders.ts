import {H2KError} from '@hyper2kvm/plugin-api'

/**
 * The store's SQL is written once with `?` placeholders (SQLite's); PostgreSQL numbers them: `$1`, `$2`…
 * A `?` inside a string literal ('…', E'…'), a quoted identifier ("…"), a dollar-quoted string ($tag$…$tag$)
 * or a comment (-- to the end of the line, nested /* … *\/) is text, not a placeholder, and stays as it is.
 * PostgreSQL's JSON operators `?|` and `?&` (and a doubled `??`) cannot be told from placeholders: such SQL
 * is refused (H2K_INTERNAL: the store's own SQL must use jsonb_exists_any/jsonb_exists_all instead) rather
 * than sent with its parameters miscounted. `?||` is a placeholder followed by the concatenation operator.
 */
export function toPositional(sql: string): string {
  let out = ''
  let n = 0
  let i = 0
  while (i < sql.length) {
    const c = sql[i]!
    const next = sql[i + 1]
    if (c === '?') {
      if (next === '?' || next === '&' || (next === '|' && sql[i + 2] !== '|')) {
        throw new H2KError('H2K_INTERNAL', `A store statement uses the operator ?${next} at offset ${i}, which cannot be told from a ? placeholder; write it with jsonb_exists_any/jsonb_exists_all.`, {details: {offset: i, operator: `?${next}`}})
      }
      out += `$${++n}`
      i++
    } else if (c === "'") {
      // E'…' takes backslash escapes; a standard string only doubles its quote.
      const escapes = i > 0 && /[eE]/.test(sql[i - 1]!) && (i < 2 || !/[\w$]/.test(sql[i - 2]!))
      const end = quotedEnd(sql, i, "'", escapes)
      out += sql.slice(i, end)
      i = end
    } else if (c === '"') {
      const end = quotedEnd(sql, i, '"', false)
      out += sql.slice(i, end)
      i = end
    } else if (c === '-' && next === '-') {
      const newline = sql.indexOf('\n', i)
      const end = newline === -1 ? sql.length : newline
      out += sql.slice(i, end)
      i = end
    } else if (c === '/' && next === '*') {
      const end = blockCommentEnd(sql, i)
      out += sql.slice(i, end)
      i = end
    } else if (c === '$' && (i === 0 || !/[\w$]/.test(sql[i - 1]!))) {
      const tag = /^\$([A-Za-z_][A-Za-z_0-9]*)?\$/.exec(sql.slice(i))?.[0]
      if (tag === undefined) {
        out += c
        i++
      } else {
        const close = sql.indexOf(tag, i + tag.length)
        const end = close === -1 ? sql.length : close + tag.length
        out += sql.slice(i, end)
        i = end
      }
    } else {
      out += c
      i++
    }
  }
  return out
}

/** The index just past the closing quote of the literal opening at `start` (a doubled quote is part of it). */
function quotedEnd(sql: string, start: number, quote: string, backslashEscapes: boolean): number {
  let i = start + 1
  while (i < sql.length) {
    const c = sql[i]
    if (backslashEscapes && c === '\\') {
      i += 2
    } else if (c === quote) {
      if (sql[i + 1] === quote) i += 2
      else return i + 1
    } else {
      i++
    }
  }
  return sql.length
}

/** The index just past the end of the (possibly nested, as PostgreSQL allows) block comment opening at `start`. */
function blockCommentEnd(sql: string, start: number): number {
  let depth = 0
  let i = start
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++
      i += 2
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--
      i += 2
      if (depth === 0) return i
    } else {
      i++
    }
  }
  return sql.length
}
