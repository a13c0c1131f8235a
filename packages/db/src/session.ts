// What a service's connections to Postgres may hold, and for how long: the run-time parameters each
// connection starts with, and the millisecond settings they are read from.

/** Server-side bounds of a service's sessions (postgres.js sends them in the startup message). A type, not an
 * interface: it is passed where any record of parameters is taken. */
export type SessionSettings = {
  readonly application_name: string;
  readonly idle_in_transaction_session_timeout: number;
  readonly statement_timeout: number;
  /** seconds: the server's probes of a silent client (a partitioned or dead host) */
  readonly tcp_keepalives_idle: number;
  readonly tcp_keepalives_interval: number;
  readonly tcp_keepalives_count: number;
};

export function sessionSettings(
  application: string,
  limits: { readonly statementTimeoutMs: number; readonly idleInTransactionTimeoutMs: number },
): SessionSettings {
  return {
    application_name: application,
    idle_in_transaction_session_timeout: limits.idleInTransactionTimeoutMs,
    statement_timeout: limits.statementTimeoutMs,
    tcp_keepalives_idle: 30,
    tcp_keepalives_interval: 10,
    tcp_keepalives_count: 3,
  };
}

/** A whole number of milliseconds ≥ `min` from `env[name]`, or the default when unset; anything else stops
 * the start with the setting's name (a NaN timeout would otherwise reach Postgres or a timer). */
export function msSetting(
  env: Record<string, string | undefined>,
  name: string,
  fallback: number,
  min: number,
): number {
  return wholeSetting(env, name, fallback, { min, unit: "milliseconds" });
}

/** A whole number in [min, max] from `env[name]`, or the default when unset; anything else stops the start
 * with the setting's name. `Number("5s")` is NaN, and a NaN period silently switched a loop off. */
export function wholeSetting(
  env: Record<string, string | undefined>,
  name: string,
  fallback: number,
  o: { readonly min: number; readonly max?: number; readonly unit?: string },
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  const max = o.max ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(value) || value < o.min || value > max)
    throw new Error(
      `${name} must be a whole number${o.unit ? ` of ${o.unit}` : ""} ${o.max === undefined ? `≥ ${o.min}` : `from ${o.min} to ${max}`}, got "${raw}"`,
    );
  return value;
}
