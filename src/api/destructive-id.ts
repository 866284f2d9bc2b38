import {H2KError} from '@hyper2kvm/plugin-api'

/** Shortest id prefix a state-changing route accepts (job ids are 8 characters: in effect, the full id). */
export const MIN_DESTRUCTIVE_ID = 8

/**
 * Cancel, retry and delete name their job by its full id (or at least MIN_DESTRUCTIVE_ID characters of
 * it): a one-character prefix — or `%25`, which the prefix lookup would read as "any" — must not pick
 * whichever job happens to be alone in the store. 404 (no job has that full id), never quoting what was sent.
 */
export function requireFullId(id: string): void {
  if (id.length < MIN_DESTRUCTIVE_ID || /[%_]/.test(id)) {
    throw new H2KError('H2K_NOT_FOUND', `No job with this id: cancel, retry and delete need the job's full id (at least ${MIN_DESTRUCTIVE_ID} characters, no % or _; \`hyper2kvm jobs list\` shows them).`)
  }
}
