/** Longest sweep `pattern` a schedule may give, and most `*` in it: a file-name filter, not a program. */
export const MAX_PATTERN_LENGTH = 128
export const MAX_PATTERN_STARS = 8

/** Why `pattern` is not an acceptable sweep pattern, or undefined when it is. */
export function patternProblem(pattern: string): string | undefined {
  if (pattern.length === 0 || pattern.includes('/')) return 'must be a file-name pattern (* and ?), without a /'
  if (pattern.length > MAX_PATTERN_LENGTH) return `may be at most ${MAX_PATTERN_LENGTH} characters long`
  if ([...pattern].filter((c) => c === '*').length > MAX_PATTERN_STARS) return `may hold at most ${MAX_PATTERN_STARS} '*'`
  return undefined
}

/**
 * Does the whole of `name` match `pattern` (`*` any run of characters, `?` one character, everything else
 * itself)? Two pointers that go back only to the last `*` seen: time bounded by name × pattern length,
 * whatever the pattern (no RegExp is built from caller text, so no catastrophic backtracking).
 */
export function wildcardMatch(pattern: string, name: string): boolean {
  const p = [...pattern]
  const n = [...name]
  let i = 0
  let j = 0
  let star = -1
  let resume = 0
  while (i < n.length) {
    if (j < p.length && (p[j] === '?' || (p[j] !== '*' && p[j] === n[i]))) {
      i++
      j++
    } else if (j < p.length && p[j] === '*') {
      star = j++
      resume = i
    } else if (star >= 0) {
      j = star + 1
      i = ++resume
    } else {
      return false
    }
  }
  while (j < p.length && p[j] === '*') j++
  return j === p.length
}
