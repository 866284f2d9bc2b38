import {strict as assert} from 'node:assert'

import {H2KError} from '@hyper2kvm/plugin-api'
import {toPositional} from '../../src/store/placeholders.js'

/** Each case: the SQL as the store writes it (SQLite's `?`), and what PostgreSQL must receive. */
const CASES: Array<{name: string; sql: string; want: string}> = [
  {name: 'numbers placeholders in order', sql: 'SELECT * FROM jobs WHERE id = ? AND status IN (?, ?) LIMIT ?', want: 'SELECT * FROM jobs WHERE id = $1 AND status IN ($2, $3) LIMIT $4'},
  {name: 'leaves a ? inside a string literal', sql: "SELECT '?' AS q, ? AS p", want: "SELECT '?' AS q, $1 AS p"},
  {name: 'a doubled quote does not end the literal', sql: "SELECT 'it''s ?', ?", want: "SELECT 'it''s ?', $1"},
  {name: 'an E-string with a backslash-escaped quote', sql: "SELECT E'\\' ?', ?", want: "SELECT E'\\' ?', $1"},
  {name: 'a backslash in a standard string is not an escape', sql: "SELECT 'C:\\', ?", want: "SELECT 'C:\\', $1"},
  {name: 'leaves a ? inside a quoted identifier', sql: 'SELECT "a?b" FROM t WHERE x = ?', want: 'SELECT "a?b" FROM t WHERE x = $1'},
  {name: 'leaves a ? inside a line comment', sql: 'SELECT ? -- why?\n, ?', want: 'SELECT $1 -- why?\n, $2'},
  {name: 'leaves a ? inside nested block comments', sql: 'SELECT /* a /* b? */ c? */ ?', want: 'SELECT /* a /* b? */ c? */ $1'},
  {name: 'leaves a ? inside a dollar-quoted string', sql: 'SELECT $$a?$$, $tag$b?$tag$, ?', want: 'SELECT $$a?$$, $tag$b?$tag$, $1'},
  {name: 'an unterminated literal swallows the rest (the server reports the syntax error)', sql: "SELECT 'open ?", want: "SELECT 'open ?"},
  {name: 'a placeholder before the concatenation operator ||', sql: "SELECT ?||'x', ? || 'y'", want: "SELECT $1||'x', $2 || 'y'"},
  {name: 'JSON operators inside a literal or comment stay text', sql: "SELECT 'a ?| b ?& c ??' -- ?|\n, ?", want: "SELECT 'a ?| b ?& c ??' -- ?|\n, $1"},
  {name: 'no placeholders: unchanged', sql: "UPDATE jobs SET id = id WHERE 1 = 0", want: 'UPDATE jobs SET id = id WHERE 1 = 0'},
]

describe('placeholder translation (? → $n for PostgreSQL)', () => {
  for (const c of CASES) {
    it(c.name, () => {
      assert.equal(toPositional(c.sql), c.want)
    })
  }

  /** The JSON operators that look like placeholders: refused, never sent with miscounted parameters. */
  for (const sql of ["SELECT * FROM t WHERE tags ?| ARRAY['a'] AND id = ?", "SELECT * FROM t WHERE tags ?& ARRAY['a']", 'SELECT ?? FROM t', "SELECT data ?|array['x'] FROM t"]) {
    it(`refuses ${sql}`, () => {
      assert.throws(() => toPositional(sql), (error: unknown) => error instanceof H2KError && error.code === 'H2K_INTERNAL' && /cannot be told from a \? placeholder/.test(error.message))
    })
  }
})
