'use strict';

// Pure rules: pod path resolution, entrypoint splitting, settings from env and argv.

const assert = require('node:assert/strict');
const { test } = require('node:test');
const { resolvePodPath } = require('../lib/podpath');
const { splitEntrypoint } = require('../lib/loader');
const { settingsFrom } = require('../lib/settings');

test('absolute in-pod paths move under RIVULET_ROOT and cannot climb above it', () => {
  assert.equal(resolvePodPath('/userfunc/user', '/tmp/pod'), '/tmp/pod/userfunc/user');
  assert.equal(resolvePodPath('/userfunc/../../etc/passwd', '/tmp/pod'), '/tmp/pod/etc/passwd');
  assert.equal(resolvePodPath('/', '/tmp/pod'), '/tmp/pod');
});

test('without a root, or for relative paths, nothing changes', () => {
  assert.equal(resolvePodPath('/userfunc/user', null), '/userfunc/user');
  assert.equal(resolvePodPath('code/index.js', '/tmp/pod'), 'code/index.js');
});

test("Fission's entrypoint split", () => {
  assert.deepEqual(splitEntrypoint(''), {});
  assert.deepEqual(splitEntrypoint('hello'), { file: 'hello' });
  assert.deepEqual(splitEntrypoint('hello.main'), { file: 'hello', func: 'main' });
  assert.deepEqual(splitEntrypoint('a.b.c'), { file: 'a', func: 'b' });
});

test("settings: Fission's defaults, --port and --codepath, local-mode variables", () => {
  const defaults = settingsFrom({}, []);
  assert.deepEqual([defaults.bindAddress, defaults.port, defaults.root, defaults.v1Codepath, defaults.bodyLimit, defaults.accessLog], [
    '0.0.0.0',
    8888,
    null,
    '/userfunc/user',
    '1mb',
    false,
  ]);
  const fission = settingsFrom({ BODY_PARSER_LIMIT: '5mb' }, ['--port', '9000', '--codepath', '/code/fn.js']);
  assert.deepEqual([fission.port, fission.v1Codepath, fission.bodyLimit], [9000, '/code/fn.js', '5mb']);
  const local = settingsFrom({ RIVULET_BIND_ADDRESS: '127.0.0.9', RIVULET_RUNTIME_PORT: '0', RIVULET_ROOT: '/tmp/pod', RIVULET_ACCESS_LOG: 'true' }, ['--port', '9000']);
  assert.deepEqual([local.bindAddress, local.port, local.root, local.accessLog], ['127.0.0.9', 0, '/tmp/pod', true]);
});
