'use strict';

// Entry point of the Rivulet Node.js runtime (`node server.js`, like Fission's node-env).
//
// Listens on $RIVULET_BIND_ADDRESS:$RIVULET_RUNTIME_PORT (default 0.0.0.0:8888; `--port` works
// as in Fission). Port 0 picks a free port; the line `listening on http://HOST:PORT` on stdout
// tells which. SIGTERM/SIGINT stop it promptly, after in-flight requests had a short grace.

const http = require('node:http');
const { createApp } = require('./lib/app');
const { settingsFrom } = require('./lib/settings');

// Time in-flight requests get to finish after SIGTERM before the process exits anyway.
const SHUTDOWN_GRACE_MS = 2000;
// Idle keep-alive connections stay open longer than a proxy's pool keeps them (nginx: 60 s),
// so the proxy, not the runtime, closes them and never reuses a connection being closed.
const KEEP_ALIVE_TIMEOUT_MS = 65000;

function main() {
  const settings = settingsFrom();
  if (!Number.isInteger(settings.port) || settings.port < 0 || settings.port > 65535) {
    console.error(`invalid port: ${process.env.RIVULET_RUNTIME_PORT}`);
    process.exit(2);
  }

  // As in Fission: an exception thrown later by user code (in a timer, a callback) is logged
  // instead of killing a runtime that serves other requests.
  process.on('uncaughtException', (err) => console.error(`Caught exception: ${err && err.stack ? err.stack : err}`));
  process.on('unhandledRejection', (err) => console.error(`Unhandled rejection: ${err && err.stack ? err.stack : err}`));

  const server = http.createServer(createApp(settings));
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1000;

  const stop = () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), SHUTDOWN_GRACE_MS).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  server.listen(settings.port, settings.bindAddress, () => {
    const { address, port } = server.address();
    console.log(`rivulet nodejs runtime listening on http://${address}:${port}`);
  });
}

main();
