import {H2KError} from '@hyper2kvm/plugin-api'

/** Shortest id prefix a state-changing route accepts (job ids are 8 characters: in effect, the full id). */
export const MIN_DESTRUCTIVE_ID = 8

/**
 * Cancel, retry and delete name their job by its full id (or at least MIN_DESTRUCTIVE_ID characters of
 * it): a one-character prefix — or `%25`, which the prefix lookup would read as "any" — must not pick
 * whichever job happens to be alone in the store. H2K_USAGE (400), never quoting what was sent.
 */
export function requireFullId(id: string): void {
  if (id.length < MIN_DESTRUCTIVE_ID || /[%_]/.test(id)) {
    throw new H2KError('H2K_USAGE', `Cancel, retry and delete need the job's full id (at least ${MIN_DESTRUCTIVE_ID} characters, no % or _).`, {suggestions: ['`hyper2kvm jobs list` shows the ids.']})
  }
}
