/**
 * A URL's user information (`scheme://user:password@`, up to the last `@` before the host:
 * a password may hold one), and a proxy's written without a scheme (`user:password@host`).
 */
const userInfo = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/'"<>]*@/gi;
const bareUserInfo = /(^|[\s='"(])[^\s/:@'"<>()=]+:[^\s/'"<>]*@(?=[a-z0-9.-]+[:/\s'")]|[a-z0-9.-]+$)/gi;

/**
 * Text with the user information of every URL in it masked (`https://****@host/…`): a
 * package index's or proxy's credentials, which the build's tools (and the build code of
 * the packages pip builds) print, never reach a build log, a run's log or a failure reason.
 * It stops what tools print as they print it, not code set on hiding it (see
 * docs/configuration.md: credentials of indexes and proxies reach that code).
 */
export function withoutUrlCredentials(text: string): string {
  return text.includes('@') ? text.replace(userInfo, '$1****@').replace(bareUserInfo, '$1****@') : text;
}
