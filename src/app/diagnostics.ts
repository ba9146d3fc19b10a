/** Where the balancer's own messages go (stderr or syslog, chosen by the CLI). */
export interface Diagnostics {
  info(msg: string): void;
  debug(level: number, msg: string): void;
  error(msg: string): void;
}
