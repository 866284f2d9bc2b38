import {join} from 'node:path'

/** The three intake layouts over the one engine (DESIGN.md §4). */
export type LayoutKind = 'watch' | 'workflow' | 'manifest-workflow'

/** The dated directory name (`YYYY-MM-DD`, UTC) of outputs (output_dir/<date>/) and settled items (processed/<date>/ …). */
export const today = (): string => new Date().toISOString().slice(0, 10)

/**
 * Where a layout keeps its files. Watch: `watch_dir/` is the inbox, `.processing/`, `.processed/<date>/`
 * and `.errors/` live inside it. Workflow and manifest workflow: `to_be_processed/ → processing/ →
 * processed/<date>/ | failed/<date>/` under their directory.
 */
export interface Layout {
  kind: LayoutKind
  /** watch_dir, workflow_dir or manifest_workflow_dir. */
  root: string
  /** Where new files are dropped. */
  inbox: string
  /** Claimed items: `<processing>/<claim-id>/`. */
  processing: string
  /** Where a succeeded item's files go on `date` (YYYY-MM-DD). */
  processedDir(date: string): string
  /** Where a failed item's files and its `<file>.error.json` go on `date`. */
  failedDir(date: string): string
  /** Where duplicates go (never converted twice). */
  duplicatesDir(date: string): string
  /** The directories holding error files: `errors list` reads `<dir>/*.error.json` of each. */
  errorRoots: string[]
  /** Whether error files sit in dated subdirectories of errorRoots (`failed/<date>/`). */
  datedErrors: boolean
  /** The daemon's own directories (seed names), checked and used through held descriptors (bookkeeping.ts). */
  bookkeeping: string[]
}

export function layoutOf(kind: LayoutKind, root: string): Layout {
  if (kind === 'watch') {
    return {
      bookkeeping: ['.processing', '.processed', '.errors', '.duplicates'].map((d) => join(root, d)),
      datedErrors: false,
      duplicatesDir: (date) => join(root, '.duplicates', date),
      errorRoots: [join(root, '.errors')],
      failedDir: () => join(root, '.errors'),
      inbox: root,
      kind,
      processedDir: (date) => join(root, '.processed', date),
      processing: join(root, '.processing'),
      root,
    }
  }
  return {
    bookkeeping: ['processing', 'processed', 'failed', 'duplicates'].map((d) => join(root, d)),
    datedErrors: true,
    duplicatesDir: (date) => join(root, 'duplicates', date),
    errorRoots: [join(root, 'failed')],
    failedDir: (date) => join(root, 'failed', date),
    inbox: join(root, 'to_be_processed'),
    kind,
    processedDir: (date) => join(root, 'processed', date),
    processing: join(root, 'processing'),
    root,
  }
}
