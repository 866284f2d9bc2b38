/**
 * The directory name of a daemon job's outputs (`output_dir/<date>/<name>/`), from a dropped file's stem or
 * a document's job name: control characters, path separators and leading dots become `_`, so no name can
 * split a log line, forge a table row or climb out of the date directory.
 */
export function outputDirName(name: string, fallback: string): string {
  const cleaned = name.replace(/[\p{Cc}\u2028\u2029/\\]/gu, '_').replace(/^\.+/, '_').slice(0, 200)
  return cleaned.trim() === '' ? fallback : cleaned
}
