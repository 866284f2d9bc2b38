import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'

import {Ajv2020} from 'ajv/dist/2020.js'
import {parse} from 'yaml'

interface Operation {
  requestBody?: {required?: boolean; content?: Record<string, {schema?: unknown}>}
  responses: Record<string, {$ref?: string; content?: Record<string, {schema?: unknown}>}>
}

interface OpenApi {
  paths: Record<string, Record<string, Operation>>
  components: {schemas: Record<string, unknown>; responses: Record<string, {content?: Record<string, {schema?: unknown}>}>}
}

const DOC_ID = 'h2k-openapi'
const doc = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as OpenApi
/** The job files' schema, which openapi.yaml's JobDocument refers to (by the relative path from the repo root). */
const JOB_SCHEMA_REF = './schemas/job.schema.json'
const jobSchema = JSON.parse(readFileSync(new URL('../../schemas/job.schema.json', import.meta.url), 'utf8')) as {$id: string; $schema?: string}
/**
 * `#/components/schemas/X` → the schemas as `$defs` of one document ajv knows; the job schema's relative
 * path → its `$id`.
 */
const rewrite = (value: unknown): unknown =>
  JSON.parse(JSON.stringify(value).replaceAll('"#/components/schemas/', `"${DOC_ID}#/$defs/`).replaceAll(`"${JOB_SCHEMA_REF}"`, `"${jobSchema.$id}"`)) as unknown
const ajv = new Ajv2020({allErrors: true, strict: false, validateFormats: false})
// Draft-07 by its `$schema`; it uses nothing 2020-12 reads differently (`definitions` + JSON-pointer refs, one-schema `items`).
const {$schema: _draft, ...jobSchema2020} = jobSchema
ajv.addSchema(jobSchema2020)
ajv.addSchema({$defs: rewrite(doc.components.schemas), $id: DOC_ID})
const compiled = new Map<string, ReturnType<typeof ajv.compile>>()

/** The documented path template (`/api/v1/jobs/{id}`) a concrete path matches. */
function templateOf(path: string): string | undefined {
  const parts = path.split('?')[0]!.split('/').filter(Boolean)
  return Object.keys(doc.paths).find((template) => {
    const segments = template.split('/').filter(Boolean)
    return segments.length === parts.length && segments.every((s, i) => (s.startsWith('{') ? parts[i] !== '' : s === parts[i]))
  })
}

/**
 * Assert that a response is documented in openapi.yaml and its JSON body matches the documented schema
 * (the status's own response, else `default`). Every API test sends every answer through this.
 */
export function expectValid(method: string, path: string, status: number, body: unknown): void {
  const template = templateOf(path)
  assert.ok(template, `${path} is not documented in openapi.yaml`)
  const operation = doc.paths[template]![method.toLowerCase()]
  assert.ok(operation, `${method} ${template} is not documented in openapi.yaml`)
  let response = operation.responses[String(status)] ?? operation.responses.default
  assert.ok(response, `${method} ${template} ${status} is not documented`)
  if (response.$ref) response = doc.components.responses[response.$ref.split('/').at(-1)!]!
  const schema = response.content?.['application/json']?.schema
  assert.ok(schema, `${method} ${template} ${status} documents no JSON body`)
  const key = `${method} ${template} ${status}`
  let validate = compiled.get(key)
  if (!validate) {
    validate = ajv.compile(rewrite(schema) as object)
    compiled.set(key, validate)
  }
  assert.ok(validate(body), `${key}: the body does not match openapi.yaml: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 2000)}`)
}

/** The documented JSON schema of an operation's request body (or undefined when it takes none). */
function requestSchemaOf(method: string, path: string): unknown {
  const template = templateOf(path)
  assert.ok(template, `${path} is not documented in openapi.yaml`)
  const operation = doc.paths[template]![method.toLowerCase()]
  assert.ok(operation, `${method} ${template} is not documented in openapi.yaml`)
  return operation.requestBody?.content?.['application/json']?.schema
}

/** Whether a request body matches the operation's documented request schema (with ajv's complaints). */
export function checkRequest(method: string, path: string, body: unknown): {valid: boolean; errors: string} {
  const schema = requestSchemaOf(method, path)
  assert.ok(schema, `${method} ${path} documents no JSON request body`)
  const key = `request ${method} ${templateOf(path)}`
  let validate = compiled.get(key)
  if (!validate) {
    validate = ajv.compile(rewrite(schema) as object)
    compiled.set(key, validate)
  }
  const valid = validate(body) as boolean
  return {errors: ajv.errorsText(validate.errors), valid}
}

/** Assert that a request body the API took (2xx) is valid by openapi.yaml: the document is no narrower than the daemon. */
export function expectValidRequest(method: string, path: string, body: unknown): void {
  const {errors, valid} = checkRequest(method, path, body)
  assert.ok(valid, `${method} ${path}: the request body does not match openapi.yaml: ${errors}\n${JSON.stringify(body).slice(0, 2000)}`)
}

/** Every documented path+method (the tests check each was exercised at least once). */
export function documentedOperations(): string[] {
  return Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
}

/** Assert that a value matches one of openapi.yaml's component schemas (what a server-sent event's `data:` carries). */
export function expectValidComponent(name: string, value: unknown): void {
  const key = `component ${name}`
  let validate = compiled.get(key)
  if (!validate) {
    assert.ok(doc.components.schemas[name], `${name} is not a component schema of openapi.yaml`)
    validate = ajv.compile({$ref: `${DOC_ID}#/$defs/${name}`})
    compiled.set(key, validate)
  }
  assert.ok(validate(value), `${key}: does not match openapi.yaml: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value).slice(0, 2000)}`)
}
