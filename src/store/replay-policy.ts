/**
 * Whether a statement outside a transaction may be run again on a new connection after its connection broke
 * (its outcome unknown): only when running it twice cannot change anything. A plain read qualifies; a read
 * that locks rows (FOR UPDATE/SHARE), advances a sequence, calls a server function with effects (pg_notify,
 * advisory locks, set_config…) or writes into a table (SELECT … INTO) does not. Conservative on purpose: a
 * word in a string literal that looks like one of these makes the statement "not replayable", which only
 * costs a retry.
 */
const READ = /^\s*(SELECT|VALUES|SHOW|TABLE)\b/i
const EFFECTS = [
  /\bFOR\s+(NO\s+KEY\s+)?UPDATE\b/i,
  /\bFOR\s+(KEY\s+)?SHARE\b/i,
  /\b(nextval|setval|set_config|dblink\w*|lo_\w+|txid_current)\s*\(/i,
  /\bpg_\w+\s*\(/i,
  /\bNOTIFY\b/i,
  /\bINTO\b/i,
]

export function isReplayable(sql: string): boolean {
  // Several statements (exec's simple protocol): not a plain read.
  if (!READ.test(sql) || /;\s*\S/.test(sql)) return false
  return !EFFECTS.some((effect) => effect.test(sql))
}
