import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import {Ajv, type ErrorObject, type ValidateFunction} from 'ajv'

/** The JSON Schemas shipped in the package (`schemas/*.json`), also used by editors through `$schema`. */
export const SCHEMA_DIR = fileURLToPath(new URL('../../schemas/', import.meta.url))

export type SchemaName = 'job' | 'manifest' | 'daemon'

const ajv = new Ajv({allErrors: true, strict: true, verbose: true})
const compiled = new Map<SchemaName, ValidateFunction>()

/** The validator of a shipped schema, compiled once per process. */
export function schemaValidator(name: SchemaName): ValidateFunction {
  let validate = compiled.get(name)
  if (!validate) {
    const schema = JSON.parse(readFileSync(`${SCHEMA_DIR}${name}.schema.json`, 'utf8')) as object
    validate = ajv.compile(schema)
    compiled.set(name, validate)
  }
  return validate
}

export type {ErrorObject}
