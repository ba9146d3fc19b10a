// Fulcrum's test harness (what VTest is to HAProxy): real loopback sockets, bounded waits, full cleanup.
// See README.md beside this file for the API and an example.
export * from './backends.ts';
export * from './client.ts';
export * from './harness.ts';
export * from './process.ts';
export * from './util.ts';
