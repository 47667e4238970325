// Compose-style variable interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, $VAR, $$.
// Pure: the caller decides where the environment comes from and what an error means.

export interface InterpolationResult {
  value: string;
  /** One message per problem, e.g. "variable DB_PASSWORD is not set". */
  errors: string[];
  /** Names of the variables that were read. */
  used: string[];
}

const NAME = '[A-Za-z_][A-Za-z0-9_]*';
const PATTERN = new RegExp(`\\$(?:(\\$)|\\{(${NAME})(?:(:?[-?+])((?:[^{}]|\\{[^{}]*\\})*))?\\}|(${NAME})|(\\{[^}]*\\}?))`, 'g');

export function interpolate(text: string, env: Record<string, string | undefined>): InterpolationResult {
  const errors: string[] = [];
  const used: string[] = [];
  /** A default or alternative value is interpolated too: its problems and variables are this text's. */
  const inner = (t: string | undefined): string => {
    const r = interpolate(t ?? '', env);
    errors.push(...r.errors);
    used.push(...r.used);
    return r.value;
  };
  const value = text.replace(PATTERN, (whole, dollar, braced, op, arg, bare, bad) => {
    if (dollar) return '$';
    if (bad !== undefined) {
      errors.push(`invalid interpolation "${whole}"`);
      return whole;
    }
    const name: string = braced ?? bare;
    used.push(name);
    const v = env[name];
    const set = v !== undefined;
    const nonEmpty = set && v !== '';
    switch (op) {
      case undefined:
        if (!set) errors.push(`variable ${name} is not set (use \${${name}:-default} for an optional value)`);
        return v ?? '';
      case ':-':
        return nonEmpty ? v! : inner(arg);
      case '-':
        return set ? v! : inner(arg);
      case ':?':
        if (!nonEmpty) errors.push(`variable ${name} is ${set ? 'empty' : 'not set'}${arg ? `: ${arg}` : ''}`);
        return v ?? '';
      case '?':
        if (!set) errors.push(`variable ${name} is not set${arg ? `: ${arg}` : ''}`);
        return v ?? '';
      case ':+':
        return nonEmpty ? inner(arg) : '';
      case '+':
        return set ? inner(arg) : '';
      default:
        errors.push(`invalid interpolation "${whole}"`);
        return whole;
    }
  });
  return { value, errors, used };
}
