import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {fileURLToPath} from 'node:url'

import type {Ajv as AjvInstance, ErrorObject, ValidateFunction} from 'ajv'

/** The JSON Schemas shipped in the package (`schemas/*.json`), also used by editors through `$schema`. */
export const SCHEMA_DIR = fileURLToPath(new URL('../../schemas/', import.meta.url))

export type SchemaName = 'job' | 'manifest' | 'daemon'

let ajv: AjvInstance | undefined
const compiled = new Map<SchemaName, ValidateFunction>()

/**
 * ajv (~60 modules) is loaded on the first validation, not when this module is imported: every command
 * imports the configuration code, and most runs have no file or variable to validate. ajv is CommonJS, so
 * require() loads it synchronously and schemaValidator() stays synchronous.
 */
function schemaCompiler(): AjvInstance {
  if (!ajv) {
    const {Ajv} = createRequire(import.meta.url)('ajv') as typeof import('ajv')
    ajv = new Ajv({allErrors: true, strict: true, verbose: true})
  }
  return ajv
}

/** The validator of a shipped schema, compiled once per process. */
export function schemaValidator(name: SchemaName): ValidateFunction {
  let validate = compiled.get(name)
  if (!validate) {
    const schema = JSON.parse(readFileSync(`${SCHEMA_DIR}${name}.schema.json`, 'utf8')) as object
    validate = schemaCompiler().compile(schema)
    compiled.set(name, validate)
  }
  return validate
}

export type {ErrorObject}
