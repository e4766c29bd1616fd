// Structured logging: JSON lines by default (what log collectors want), a readable line on a
// terminal. Every record names what it concerns through its fields (pod, container, image, file).

export type Level = "debug" | "info" | "warn" | "error";
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  with(fields: Fields): Logger;
}

export interface LoggerOptions {
  level?: Level;
  format?: "json" | "text";
  out?: NodeJS.WritableStream;
}

export function isLevel(s: string): s is Level {
  return s in ORDER;
}

export function createLogger(opts: LoggerOptions = {}, base: Fields = {}): Logger {
  const out = opts.out ?? process.stderr;
  const min = ORDER[opts.level ?? "info"];
  const format = opts.format ?? ((out as { isTTY?: boolean }).isTTY ? "text" : "json");
  const emit = (level: Level, msg: string, fields?: Fields) => {
    if (ORDER[level] < min) return;
    const all = { ...base, ...fields };
    if (format === "json") {
      out.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...all })}\n`);
    } else {
      const kv = Object.entries(all)
        .map(([k, v]) => `${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`)
        .join(" ");
      out.write(`${new Date().toISOString().slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${msg}${kv ? ` ${kv}` : ""}\n`);
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    with: (f) => createLogger(opts, { ...base, ...f }),
  };
}

/** A logger that drops everything, for unit tests. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  with() {
    return silentLogger;
  },
};
