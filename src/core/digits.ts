/**
 * ASCII digits without a regular expression (/\d/ and /^\d+$/). Parsing what a start needs
 * (pen's command line, addresses, the open-files limit) runs no regular expression: the first
 * one a process runs loads the runtime's regular expression compiler, for good (≈0.4 MB
 * resident at rest, docs/performance.md).
 */
export function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** True when `text` is one or more ASCII digits. */
export function isDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) if (!isDigit(text.charCodeAt(i))) return false;
  return true;
}
