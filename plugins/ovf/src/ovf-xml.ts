import {XMLParser, XMLValidator} from 'fast-xml-parser'
import {H2KError} from '@hyper2kvm/plugin-api'

/** A parsed XML element: attributes under "@name", children by local name, text under "#text". */
export type XmlNode = Record<string, unknown>

/** Elements that may repeat where we read them; always parsed as arrays so one and many look alike. */
const REPEATED = new Set(['VirtualSystem', 'VirtualHardwareSection', 'Item', 'StorageItem', 'EthernetPortItem', 'Disk', 'File', 'Config', 'ExtraConfig', 'Network'])

const PREDEFINED_ENTITIES: Readonly<Record<string, string>> = {amp: '&', apos: "'", gt: '>', lt: '<', quot: '"'}

/** Entity processing is off in the parser (no DTD expansion, ever); decode only XML's own references. */
function decodeReferences(value: string): string {
  return value.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, body: string) => {
    if (body.startsWith('#')) {
      const code = body[1] === 'x' || body[1] === 'X' ? Number.parseInt(body.slice(2), 16) : Number.parseInt(body.slice(1), 10)
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole
    }
    return PREDEFINED_ENTITIES[body] ?? whole
  })
}

function invalid(label: string, why: string): H2KError {
  return new H2KError('H2K_OVF_INVALID', `${label}: ${why}`, {details: {descriptor: label}})
}

/** Real OVF descriptors nest about 6 elements deep; the parser's limit (its default, stated here) is ample. */
const MAX_NESTED_TAGS = 100

/**
 * The XML library reports a document it will not read (nesting beyond its limit, a malformed tag its
 * validator let through, a stack overflow on pathological input) by throwing a plain Error: that is an
 * invalid descriptor (permanent), not an internal failure to retry.
 */
function withinParserLimits<T>(parse: () => T, label: string): T {
  try {
    return parse()
  } catch (error) {
    if (error instanceof H2KError) throw error
    // Some of its messages quote the text after " Context:" (found by fuzzing); keep only what went wrong.
    const why = error instanceof Error ? (error.message.split(' Context:')[0] ?? '').slice(0, 120) : 'unknown parser error'
    throw new H2KError('H2K_OVF_INVALID', `${label}: the XML parser refused the descriptor (${why}).`, {cause: error, details: {descriptor: label}})
  }
}

/**
 * Parse untrusted OVF XML safely: documents with a DTD are refused (no entity expansion, no external
 * references), the text must be well-formed and within the parser's limits (H2K_OVF_INVALID otherwise),
 * and namespace prefixes are dropped so `ovf:`, `rasd:`, `vmw:` or a default namespace all read the same.
 */
export function parseOvfXml(text: string, label: string): XmlNode {
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw invalid(label, 'the descriptor declares a DTD or entities, which OVF never needs; refusing it.')
  const valid = withinParserLimits(() => XMLValidator.validate(text), label)
  if (valid !== true) throw invalid(label, `not well-formed XML (line ${valid.err.line}: ${valid.err.msg}).`)
  const parser = new XMLParser({
    maxNestedTags: MAX_NESTED_TAGS,
    attributeNamePrefix: '@',
    htmlEntities: false,
    ignoreAttributes: false,
    ignoreDeclaration: true,
    ignorePiTags: true,
    isArray: (name, _path, _leaf, isAttribute) => !isAttribute && REPEATED.has(name),
    parseAttributeValue: false,
    parseTagValue: false,
    processEntities: false,
    removeNSPrefix: true,
    trimValues: true,
  })
  const document = withinParserLimits(() => parser.parse(text) as XmlNode, label)
  const envelope = document.Envelope
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) throw invalid(label, 'the root element is not an OVF Envelope.')
  return envelope as XmlNode
}

function asNode(value: unknown): XmlNode | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as XmlNode) : undefined
}

/** All child elements named `name` (by local name). */
export function children(node: XmlNode | undefined, name: string): XmlNode[] {
  const value = node?.[name]
  const list = Array.isArray(value) ? value : value === undefined ? [] : [value]
  // An empty element parses as "", which is still an element: represent it as an empty node.
  return list.map((entry) => asNode(entry) ?? (typeof entry === 'string' ? {'#text': entry} : {}))
}

export function child(node: XmlNode | undefined, name: string): XmlNode | undefined {
  return children(node, name)[0]
}

/** The text content of a child element (or of the node itself when `name` is omitted), trimmed; undefined when empty. */
export function text(node: XmlNode | undefined, name?: string): string | undefined {
  const target = name === undefined ? node : child(node, name)
  const raw = target?.['#text']
  const value = typeof raw === 'string' || typeof raw === 'number' ? decodeReferences(String(raw)).trim() : undefined
  return value === '' ? undefined : value
}

export function attribute(node: XmlNode | undefined, name: string): string | undefined {
  const raw = node?.[`@${name}`]
  return typeof raw === 'string' && raw !== '' ? decodeReferences(raw) : undefined
}
