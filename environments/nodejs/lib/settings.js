'use strict';

// Runtime settings, read once at start from the environment and the command line
// (Fission's node-env takes `--port` and `--codepath`).

const path = require('node:path');
const { parseArgs } = require('node:util');
const { resolvePodPath } = require('./podpath');

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);

function settingsFrom(env = process.env, argv = process.argv.slice(2)) {
  const { values } = parseArgs({
    args: argv,
    options: { port: { type: 'string' }, codepath: { type: 'string' } },
    strict: false,
  });
  const port = env.RIVULET_RUNTIME_PORT || values.port || '8888';
  return {
    bindAddress: env.RIVULET_BIND_ADDRESS || '0.0.0.0',
    port: Number.parseInt(port, 10),
    // Directory standing for the pod's filesystem root in local mode (null in a container).
    root: env.RIVULET_ROOT || null,
    // Fission's fixed code path for version-1 specialization.
    v1Codepath: values.codepath || '/userfunc/user',
    // Fission's BODY_PARSER_LIMIT for the urlencoded, json, raw and text parsers.
    bodyLimit: env.BODY_PARSER_LIMIT || '1mb',
    // One log line per request; off by default because it costs throughput.
    accessLog: TRUE_WORDS.has((env.RIVULET_ACCESS_LOG || '').toLowerCase()),
    // Linked as `node_modules` next to a version-1 function, as Fission does.
    runtimeNodeModules: path.join(__dirname, '..', 'node_modules'),
  };
}

/** An in-pod absolute path, as seen from this process. */
function podPath(settings, p) {
  return resolvePodPath(p, settings.root);
}

module.exports = { settingsFrom, podPath };
