// The logger shape meshplane modules accept: pino's (object first, message
// second), so that modules do not depend on a logging library.

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: object): Logger;
  /** pino's: lets a hot path skip building a record nobody will see. */
  isLevelEnabled?(level: string): boolean;
}

/** Discards everything: the default for library use and tests. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
  isLevelEnabled() {
    return false;
  },
};
