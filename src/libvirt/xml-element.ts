import {H2KError} from '@hyper2kvm/plugin-api'

/** One element of a document we write: its name and attributes come from our code, values from anywhere. */
export interface XmlElement {
  name: string
  attributes: ReadonlyArray<readonly [string, string | number]>
  /** Text content or child elements, never both (the documents we write have no mixed content). */
  content: string | number | ReadonlyArray<XmlElement>
}

/** An element; attributes whose value is undefined are left out, so optional facts read naturally. */
export function element(name: string, attributes: Record<string, string | number | undefined> = {}, content: string | number | ReadonlyArray<XmlElement | undefined> = []): XmlElement {
  const present = Object.entries(attributes).filter((entry): entry is [string, string | number] => entry[1] !== undefined)
  return {attributes: present, content: typeof content === 'object' ? content.filter((child): child is XmlElement => child !== undefined) : content, name}
}

const NAME = /^[A-Za-z][A-Za-z0-9_-]*$/
/** What XML 1.0 cannot hold at all (C0 controls other than tab/LF/CR, lone surrogates, U+FFFE/U+FFFF): escaping cannot help. */
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

function checkName(name: string): string {
  if (!NAME.test(name)) throw new H2KError('H2K_INTERNAL', `Invalid XML name ${JSON.stringify(name)}.`)
  return name
}

/**
 * A value as XML character data: `&`, `<`, `>` and both quotes become references, so a value can never end
 * an attribute or open an element. A value XML cannot represent is refused, never dropped or mangled: the
 * callers validate what they put in, so this is the last line, and its message never repeats the value.
 */
export function escapeXml(value: string | number): string {
  const text = String(value)
  if (NOT_XML.test(text)) throw new H2KError('H2K_OUTPUT_FAILED', 'A value for an XML file holds characters XML cannot represent (control characters).')
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&apos;')
}

function render(node: XmlElement, depth: number, lines: string[]): void {
  const indent = '  '.repeat(depth)
  const attributes = node.attributes.map(([key, value]) => ` ${checkName(key)}="${escapeXml(value)}"`).join('')
  const open = `${indent}<${checkName(node.name)}${attributes}`
  if (typeof node.content !== 'object') {
    lines.push(`${open}>${escapeXml(node.content)}</${node.name}>`)
  } else if (node.content.length === 0) {
    lines.push(`${open}/>`)
  } else {
    lines.push(`${open}>`)
    for (const child of node.content) render(child, depth + 1, lines)
    lines.push(`${indent}</${node.name}>`)
  }
}

/** The document, indented two spaces, one element per line, ending in a newline. */
export function renderXml(root: XmlElement): string {
  const lines: string[] = []
  render(root, 0, lines)
  return `${lines.join('\n')}\n`
}
