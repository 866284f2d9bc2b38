/** Natural order: runs of digits compare as numbers, the rest as text (ens160 < ens192 < ens224, 6.1.0-9 < 6.1.0-50). */
export function naturalCompare(a: string, b: string): number {
  const split = (v: string) => v.split(/(\d+)/).filter(Boolean)
  const pa = split(a)
  const pb = split(b)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? ''
    const y = pb[i] ?? ''
    const diff = /^\d+$/.test(x) && /^\d+$/.test(y) ? Number(x) - Number(y) : x.localeCompare(y)
    if (diff !== 0) return diff
  }
  return 0
}
