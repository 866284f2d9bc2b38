import {H2KError} from '@hyper2kvm/plugin-api'

/**
 * The archive member an OVF `href` (or a manifest line) names, in the canonical form the tar scan reports.
 * Inside an OVA a reference can only be a plain relative name: URLs, absolute paths and ".." are refused.
 */
export function memberNameForHref(href: string, referrer: string): string {
  const unsafe = (why: string) =>
    new H2KError('H2K_UNSAFE_PATH', `${referrer} names the file "${href}", ${why}; refusing to open it.`, {details: {name: href, referrer}})
  if (/^[a-z][a-z0-9+.-]*:/i.test(href)) throw unsafe('a URL')
  if (href.startsWith('/') || href.startsWith('\\')) throw unsafe('an absolute path')
  const segments = href.split(/[\\/]/)
  if (segments.includes('..')) throw unsafe('a path with ".."')
  const name = segments.filter((segment) => segment !== '' && segment !== '.').join('/')
  if (name === '') throw unsafe('an empty name')
  return name
}

/** Like memberNameForHref, but a name that could never be a member is simply absent (for manifest lookups). */
export function memberNameOrUndefined(name: string, referrer: string): string | undefined {
  try {
    return memberNameForHref(name, referrer)
  } catch {
    // An unsafe manifest name cannot match any member: the caller reports it as a missing file.
    return undefined
  }
}
