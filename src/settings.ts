/**
 * Every setting of the server as one row: its flag, its environment variable, how its text is
 * read (with the message a bad value gets), its default, its help and whether it is a secret.
 * The rows drive argument parsing, `--help`, the README's table, `.env.example` and the
 * variables the tasks may read; tests fail when any of those drifts from them.
 *
 * @module
 */

/** A configuration mistake; its message is the one line printed. */
export class ConfigError extends Error {}

/** Reads a setting's text; throws ConfigError with a message naming `source`. */
export type Parse<T> = (text: string, source: string) => T;

/** One setting. */
export interface Setting<T = unknown> {
  /** The flag without its dashes, e.g. "url" for `--url`. */
  readonly flag?: string;
  /** A one-letter alias of the flag. */
  readonly short?: string;
  /** The environment variable. */
  readonly env?: string;
  /** What the flag's value looks like in `--help`, e.g. "URL"; none: an on/off switch. */
  readonly arg?: string;
  readonly parse: Parse<T>;
  /** The value when neither flag nor variable is given, as text (parsed like any other). */
  readonly default?: string;
  readonly help: string;
  /** A credential: never printed; `.env.example` leaves its value empty. */
  readonly secret?: boolean;
  /** The value `.env.example` shows (commented out unless it is the default's). */
  readonly example?: string;
}

/** Text as given, spaces trimmed. */
export const text: Parse<string> = (value) => value.trim();

/**
 * The one yes/no rule: "yes" or "no", case and spaces aside; anything else is refused.
 * (`SQUONK2_ASAPI_VERIFY_SSL_CERT` alone keeps the Python client's rule; see its row.)
 */
export const yesNo: Parse<boolean> = (value, source) => {
  const v = value.trim().toLowerCase();
  if (v === "yes") return true;
  if (v === "no") return false;
  throw new ConfigError(`${source} must be "yes" or "no", not "${value}"`);
};

/**
 * The Python client's rule for `SQUONK2_ASAPI_VERIFY_SSL_CERT`: verify only for "yes" (case and
 * spaces aside), so that existing settings keep working; a value other than "yes" or "no" earns
 * a warning. A flag (`--verify-ssl-cert`) is ours, not the Python client's: it follows `yesNo`.
 */
export const pythonYes: Parse<{ verify: boolean; warning?: string }> = (value, source) => {
  if (source.startsWith("--")) return { verify: yesNo(value, source) };
  const said = value.trim().toLowerCase();
  const verify = said === "yes";
  if (verify || said === "no") return { verify };
  return {
    verify,
    warning: `${source} is "${value}", not "yes": TLS certificates will NOT be verified ` +
      `(as with the Python client, anything but "yes" turns verification off; say "no" to ` +
      `mean it, or "yes" to verify)`,
  };
};

/** A comma-separated list, empty items dropped. */
export const list: Parse<string[]> = (value) =>
  value.split(",").map((v) => v.trim()).filter(Boolean);

/** One of `choices`. */
export function choice<const C extends string>(choices: readonly C[]): Parse<C> {
  return (value, source) => {
    const v = value.trim();
    if ((choices as readonly string[]).includes(v)) return v as C;
    throw new ConfigError(
      `${source} must be ${choices.map((c) => `"${c}"`).join(" or ")}, not "${value}"`,
    );
  };
}

/** A whole number from `min` to `max`, described as `what`. */
export function wholeNumber(what: string, min: number, max: number): Parse<number> {
  return (value, source) => {
    const v = value.trim();
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
      throw new ConfigError(`${source} must be ${what}, ${range}, not "${value}"`);
    }
    return n;
  };
}

/** How a flag and a variable of one row are named in messages. */
export function sourceName(setting: Setting, fromFlag: boolean): string {
  return fromFlag ? `--${setting.flag}` : setting.env ?? `--${setting.flag}`;
}

/**
 * Reads every row of `table`: the flag if given, else the variable if set and not blank, else
 * the default; each through the row's parser. A switch (a row without `arg`) is on when given
 * alone, and takes its value as `--switch=yes` or `--switch=no`. Unknown flags and positionals
 * are refused.
 */
export function readSettings<K extends string>(
  table: Readonly<Record<K, Setting>>,
  args: readonly string[],
  env: (name: string) => string | undefined,
): Record<K, unknown> {
  const flags = parseFlags(table, args);
  const out = {} as Record<K, unknown>;
  for (const [key, setting] of Object.entries(table) as [K, Setting][]) {
    const flag = setting.flag ? flags.get(setting.flag) : undefined;
    if (flag !== undefined) {
      out[key] = flag === true ? true : setting.parse(flag, sourceName(setting, true));
    } else {
      const value = readVariable(setting, env);
      if (value !== undefined) out[key] = value;
    }
  }
  return out;
}

/**
 * Reads a row without its flag: its variable if set and not blank, else its default, through
 * the row's parser; undefined when neither is there.
 */
export function readVariable<T>(
  setting: Setting<T>,
  env: (name: string) => string | undefined,
): T | undefined {
  const variable = setting.env ? env(setting.env)?.trim() || undefined : undefined;
  const value = variable ?? setting.default;
  return value === undefined ? undefined : setting.parse(value, sourceName(setting, false));
}

/**
 * A reader of this process's environment for which a variable the permissions deny is a
 * mistake in how `who` was started (a ConfigError saying what to do: `fix`), not an unset value.
 */
export function permittedEnv(who: string, fix: string): (name: string) => string | undefined {
  return (name) => {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      throw new ConfigError(
        `${name} cannot be read: ${who} was started without --allow-env for it (${fix})`,
      );
    }
    return Deno.env.get(name);
  };
}

function parseFlags(
  table: Readonly<Record<string, Setting>>,
  args: readonly string[],
): Map<string, string | true> {
  const rows = Object.values(table).filter((s) => s.flag);
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = arg.startsWith("--") ? splitOnce(arg.slice(2)) : [undefined, undefined];
    const row = name !== undefined
      ? rows.find((s) => s.flag === name)
      : rows.find((s) => s.short && arg === `-${s.short}`);
    if (!row) throw new ConfigError(`Unknown option '${arg}' (see --help)`);
    if (!row.arg) {
      // A switch alone is on; `--switch=no` turns off a "yes" from the environment.
      flags.set(row.flag!, inline ?? true);
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined || (inline === undefined && value.startsWith("--"))) {
      throw new ConfigError(`--${row.flag} needs a value: --${row.flag} ${row.arg} (see --help)`);
    }
    flags.set(row.flag!, value);
  }
  return flags;
}

function splitOnce(arg: string): [string, string | undefined] {
  const at = arg.indexOf("=");
  return at < 0 ? [arg, undefined] : [arg.slice(0, at), arg.slice(at + 1)];
}

/** The `--help` lines of `table`: flags first, then variables. */
export function helpLines(table: Readonly<Record<string, Setting>>): string {
  const rows = Object.values(table);
  const line = (left: string, right: string) => `  ${left.padEnd(38)} ${right}`;
  const flags = rows.filter((s) => s.flag).map((s) => {
    const short = s.short ? `-${s.short}, ` : "";
    const also = s.env ? ` (${s.env})` : "";
    return line(`${short}--${s.flag}${s.arg ? ` ${s.arg}` : ""}`, `${s.help}${also}`);
  });
  const vars = rows.filter((s) => s.env).map((s) => {
    const values = s.parse === yesNo ? "yes or no" : "";
    const fallback = s.default !== undefined ? `default ${s.default}` : "";
    const note = [s.secret ? "secret" : "", values, fallback].filter(Boolean).join(", ");
    return line(s.env!, `${s.help}${note ? ` (${note})` : ""}`);
  });
  return `Options:\n${flags.join("\n")}\n\nEnvironment:\n${vars.join("\n")}`;
}
