/**
 * Turn an untrusted name (an OVF VM name, a file stem) into a safe output file stem: no path separators,
 * no leading dots, no control characters, bounded length.
 */
export function safeFileStem(name: string, fallback = 'disk'): string {
  const cleaned = name
    .normalize('NFKC')
    .replace(/[^\w.+-]+/g, '_')
    .replace(/^[._-]+/, '')
    .replace(/_+/g, '_')
    .slice(0, 100)
    .replace(/[._-]+$/, '')
  return cleaned.length > 0 ? cleaned : fallback
}
