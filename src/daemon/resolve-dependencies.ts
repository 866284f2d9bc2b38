import {H2KError} from '@hyper2kvm/plugin-api'
import {isPlainKey} from '../errors/plain-key.js'

/** One job of a batch being recorded: its id, its name in the document, what it says it waits for. */
export interface BatchNode {
  id: string
  name: string
  /** Where it is in the document (`jobs[2]`), for messages. */
  at: string
  dependsOn?: readonly string[]
}

const shown = (text: string): string => (isPlainKey(text) ? `"${text}"` : `a name of ${text.length} characters (not shown)`)

/**
 * `depends_on` of a batch → job ids: a name of a job in the same batch first, else the id of a job already in
 * the store (`existing`). Unknown references and cycles are refused (H2K_JOB_INVALID naming them: the
 * cycle as `a → b → a`). Returns the ids each job waits for, and the batch in an order where every job
 * comes after the jobs of the batch it waits for (the order to insert them in).
 */
export function resolveDependencies(nodes: readonly BatchNode[], existing: (ref: string) => string | undefined, what: string): {edges: Map<string, string[]>; order: BatchNode[]} {
  const byName = new Map(nodes.map((n) => [n.name, n]))
  const byId = new Map(nodes.map((n) => [n.id, n]))
  const problems: string[] = []
  const edges = new Map<string, string[]>()
  for (const node of nodes) {
    const ids: string[] = []
    for (const [index, ref] of (node.dependsOn ?? []).entries()) {
      const id = byName.get(ref)?.id ?? existing(ref)
      if (id === undefined) problems.push(`${node.at}.depends_on[${index}]: unknown job ${shown(ref)} (neither the name of a job in this batch nor the id of a job in the store)`)
      else if (!ids.includes(id)) ids.push(id)
    }
    edges.set(node.id, ids)
  }
  if (problems.length > 0) throw new H2KError('H2K_JOB_INVALID', `${what} is not a valid job file:\n${problems.join('\n')}`, {details: {violations: problems}})
  // Depth-first search within the batch (jobs already in the store cannot wait for new ones): a back edge is a cycle.
  const state = new Map<string, 'open' | 'done'>()
  const order: BatchNode[] = []
  const visit = (node: BatchNode, path: BatchNode[]): void => {
    if (state.get(node.id) === 'done') return
    if (state.get(node.id) === 'open') {
      const cycle = [...path.slice(path.indexOf(node)), node].map((n) => shown(n.name)).join(' → ')
      throw new H2KError('H2K_JOB_INVALID', `${what}: depends_on forms a cycle: ${cycle}; no job of it could ever start.`, {
        details: {cycle: [...path.slice(path.indexOf(node)), node].map((n) => n.at)},
        suggestions: ['Remove one depends_on entry of the cycle.'],
      })
    }
    state.set(node.id, 'open')
    for (const parent of edges.get(node.id) ?? []) {
      const inBatch = byId.get(parent)
      if (inBatch) visit(inBatch, [...path, node])
    }
    state.set(node.id, 'done')
    order.push(node)
  }
  for (const node of nodes) visit(node, [])
  return {edges, order}
}
