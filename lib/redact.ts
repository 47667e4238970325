// One place that knows the secrets of this run and blanks them out of any text we print or store.
const MASK = '***';

export class Redactor {
  private secrets: string[] = [];

  /** Register a secret value. Empty and very short values are ignored: masking "a" would mangle all output. */
  add(value: string | undefined | null): void {
    if (!value || value.length < 3) return;
    // The URL-encoded form too: passwords show up inside connection strings that way. And the JSON-escaped form: a
    // secret with a quote or backslash in it is spelled differently inside JSON (--json, an echoed request body).
    const forms = [value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1), JSON.stringify(JSON.stringify(value).slice(1, -1)).slice(1, -1)];
    for (const v of new Set(forms)) if (!this.secrets.includes(v)) this.secrets.push(v);
    // Longest first, so a secret that contains another is masked whole.
    this.secrets.sort((a, b) => b.length - a.length);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join(MASK);
    // Passwords embedded in URLs we did not know about (user:pass@host), up to the last @ of the URL: an unencoded
    // password may hold '/', '#', '?' or '@' itself (libpq and SQLAlchemy read such URLs).
    return out.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]+:)(\S*)(@[^@\s]*)/gi, `$1${MASK}$3`);
  }

  get count(): number {
    return this.secrets.length;
  }
}
