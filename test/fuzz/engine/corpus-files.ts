import {readdir, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {REPO_ROOT} from './supervisor.js'

export const FUZZ_DIR = join(REPO_ROOT, 'test/fuzz')
export const SEED_DIR = join(FUZZ_DIR, 'corpus')
/** Cases made of what the fuzzer found: test/hostile/fuzz/<target>/<case>/{input,case.json}. */
export const CASE_DIR = join(REPO_ROOT, 'test/hostile/fuzz')
/** Inputs a `make fuzz` run kept or found, outside git. */
export const WORK_DIR = join(REPO_ROOT, '.cache/fuzz')

/** Every target: test/fuzz/<name>.fuzz.ts. */
export async function targetNames(): Promise<string[]> {
  return (await readdir(FUZZ_DIR)).filter((file) => file.endsWith('.fuzz.ts')).map((file) => file.slice(0, -'.fuzz.ts'.length)).sort()
}

export const targetFile = (name: string): string => join(FUZZ_DIR, `${name}.fuzz.ts`)

/** The files of a directory (sorted, absent directory = none), with their bytes. */
export async function readInputs(dir: string): Promise<Array<{name: string; bytes: Buffer}>> {
  let names: string[]
  try {
    names = (await readdir(dir, {withFileTypes: true})).filter((entry) => entry.isFile()).map((entry) => entry.name).sort()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  return Promise.all(names.map(async (name) => ({name, bytes: await readFile(join(dir, name))})))
}
