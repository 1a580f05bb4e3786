/**
 * Structured logs: one JSON object per line on stderr (or a plain prefixed line when `pretty`),
 * with the node id on every line. Levels below `level` are dropped.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  debug(msg: string, fields?: object): void;
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
  error(msg: string, fields?: object): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(options: {
  node: string;
  level?: LogLevel;
  pretty?: boolean;
  write?: (line: string) => void;
}): Logger {
  const min = ORDER[options.level ?? ((process.env.CAIRN_LOG_LEVEL as LogLevel | undefined) ?? "info")] ?? 20;
  const write = options.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const emit = (level: LogLevel, msg: string, fields?: object) => {
    if (ORDER[level] < min) return;
    if (options.pretty) {
      const extra = fields && Object.keys(fields).length > 0 ? " " + JSON.stringify(fields) : "";
      write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}${extra}`);
    } else {
      write(JSON.stringify({ t: new Date().toISOString(), level, node: options.node, msg, ...fields }));
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
