'use strict';

// Specialization over HTTP against the real runtime: entrypoint rules, module kinds, errors.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { makePod, startServer } = require('../test-support/harness');

const say = (word) => `module.exports = async () => ({ status: 200, body: ${JSON.stringify(word)} });\n`;

async function specializedServer(t, files, filepath, functionName) {
  const pod = makePod(t);
  for (const [podPath, source] of Object.entries(files)) pod.write(podPath, source);
  const server = await startServer(t, pod.root);
  const answer = await server.specialize(filepath, functionName);
  return { pod, server, answer };
}

async function assertServes(t, files, filepath, functionName, expected) {
  const { server, answer } = await specializedServer(t, files, filepath, functionName);
  assert.equal(answer.status, 202, answer.body);
  const reply = await server.request('GET', '/');
  assert.equal(reply.body, expected);
}

test('directory with file.func loads the named export', (t) =>
  assertServes(
    t,
    { '/userfunc/deployarchive/multi.js': 'exports.one = async () => ({ status: 200, body: "one" });\nexports.two = async () => ({ status: 200, body: "two" });\n' },
    '/userfunc/deployarchive',
    'multi.two',
    'two',
  ));

test('directory with a bare file name loads its default export', (t) =>
  assertServes(
    t,
    { '/userfunc/deployarchive/hello.js': say('hello'), '/userfunc/deployarchive/other.js': say('other') },
    '/userfunc/deployarchive',
    'hello',
    'hello',
  ));

test('empty entrypoint: the only JS file of the directory', (t) =>
  assertServes(t, { '/userfunc/deployarchive/solo.js': say('solo'), '/userfunc/deployarchive/data.txt': 'x' }, '/userfunc/deployarchive', '', 'solo'));

test('empty entrypoint: package.json main among several files', (t) =>
  assertServes(
    t,
    {
      '/userfunc/deployarchive/a.js': say('a'),
      '/userfunc/deployarchive/b.js': say('b'),
      '/userfunc/deployarchive/package.json': JSON.stringify({ main: 'b.js' }),
    },
    '/userfunc/deployarchive',
    '',
    'b',
  ));

test('empty entrypoint: index.js when nothing else decides', (t) =>
  assertServes(t, { '/userfunc/deployarchive/a.js': say('a'), '/userfunc/deployarchive/index.js': say('index') }, '/userfunc/deployarchive', '', 'index'));

test('a single-file package is loaded whatever the entrypoint', async (t) => {
  await assertServes(t, { '/userfunc/deployarchive': say('file') }, '/userfunc/deployarchive', '', 'file');
  await assertServes(
    t,
    { '/userfunc/deployarchive': 'module.exports.handler = async () => ({ status: 200, body: "named" });\n' },
    '/userfunc/deployarchive',
    'hello.handler',
    'named',
  );
  // The fetcher stores a single file without extension; ES module syntax must still load.
  await assertServes(t, { '/userfunc/deployarchive': 'export default async () => ({ status: 200, body: "esm file" });\n' }, '/userfunc/deployarchive', '', 'esm file');
});

test('ES modules: .mjs named export and a type=module package default export', async (t) => {
  await assertServes(
    t,
    { '/userfunc/deployarchive/esm.mjs': 'export const entry1 = async () => ({ status: 200, body: "esm named" });\n' },
    '/userfunc/deployarchive',
    'esm.entry1',
    'esm named',
  );
  await assertServes(
    t,
    {
      '/userfunc/deployarchive/package.json': JSON.stringify({ type: 'module' }),
      '/userfunc/deployarchive/hello.js': 'const word = await Promise.resolve("top-level await");\nexport default async () => ({ status: 200, body: word });\n',
    },
    '/userfunc/deployarchive',
    'hello',
    'top-level await',
  );
});

test('version 1 loads /userfunc/user and links the runtime node_modules beside it', async (t) => {
  const pod = makePod(t);
  pod.write('/userfunc/user', 'const express = require("express");\nmodule.exports = async () => ({ status: 200, body: typeof express });\n');
  const server = await startServer(t, pod.root);
  const answer = await server.request('POST', '/specialize', { headers: { 'Content-Type': 'text/plain' }, body: '' });
  assert.equal(answer.status, 202, answer.body);
  assert.ok(fs.lstatSync(path.join(pod.root, 'userfunc', 'node_modules')).isSymbolicLink());
  assert.equal((await server.request('GET', '/')).body, 'function');
});

test('in-pod paths are read under RIVULET_ROOT even when they exist on the host', (t) =>
  assertServes(t, { '/tmp/index.js': say('under the root') }, '/tmp', '', 'under the root'));

async function assertLoadFails(t, files, filepath, functionName, ...fragments) {
  const { server, answer } = await specializedServer(t, files, filepath, functionName);
  assert.equal(answer.status, 500, answer.body);
  for (const fragment of fragments) assert.ok(answer.body.includes(fragment), `${JSON.stringify(fragment)} not in ${answer.body}`);
  // A failed load leaves the runtime generic.
  assert.equal((await server.request('GET', '/')).status, 500);
}

test('syntax error: 500 naming the file, the line and the error', (t) =>
  assertLoadFails(t, { '/userfunc/deployarchive/broken.js': 'module.exports = async () => {\n  return {;\n};\n' }, '/userfunc/deployarchive', 'broken', 'SyntaxError', 'broken.js:2'));

test('syntax error in an ES module: 500 naming the file and the line too', (t) =>
  assertLoadFails(t, { '/userfunc/deployarchive/broken.mjs': 'export default async () => {\n  return {;\n};\n' }, '/userfunc/deployarchive', 'broken', 'SyntaxError', 'broken.mjs:2'));

test('error thrown while loading: 500 with the message and the place', (t) =>
  assertLoadFails(t, { '/userfunc/deployarchive/angry.js': 'const x = 1;\nthrow new Error("no config");\n' }, '/userfunc/deployarchive', 'angry', 'Error: no config', 'angry.js:2'));

test('missing entrypoint: 500', (t) =>
  assertLoadFails(t, { '/userfunc/deployarchive/hello.js': say('x') }, '/userfunc/deployarchive', 'hello.nope', "entrypoint 'nope' is not a function"));

test('module without a default function: 500', (t) =>
  assertLoadFails(t, { '/userfunc/deployarchive/hello.js': 'module.exports = { notAFunction: 1 };\n' }, '/userfunc/deployarchive', 'hello', 'does not export a function'));

test('missing module: 500', (t) =>
  assertLoadFails(t, { '/userfunc/deployarchive/hello.js': say('x') }, '/userfunc/deployarchive', 'absent.main', "module 'absent' not found"));

test('missing code path: 500', (t) => assertLoadFails(t, {}, '/userfunc/nothing-here', '', 'does not exist'));

test('missing dependency of the module: 500 naming it', (t) =>
  assertLoadFails(t, { '/userfunc/deployarchive/deps.js': 'require("left-pad-that-is-not-installed");\n' }, '/userfunc/deployarchive', 'deps', 'left-pad-that-is-not-installed'));

test('called before specialization: Fission answer', async (t) => {
  const server = await startServer(t, makePod(t).root);
  const reply = await server.request('POST', '/anything', { body: 'x' });
  assert.equal(reply.status, 500);
  assert.equal(reply.body, 'Generic container: no requests supported');
});

test('specialized twice: 400 Not a generic container, and the first function stays', async (t) => {
  const { server, answer } = await specializedServer(
    t,
    { '/userfunc/deployarchive/a.js': say('a'), '/userfunc/deployarchive/b.js': say('b') },
    '/userfunc/deployarchive',
    'a',
  );
  assert.equal(answer.status, 202);
  const again = await server.specialize('/userfunc/deployarchive', 'b');
  assert.deepEqual([again.status, again.body], [400, 'Not a generic container']);
  assert.equal((await server.request('POST', '/specialize')).status, 400);
  assert.equal((await server.request('GET', '/')).body, 'a');
});

test('malformed specialize request: 400', async (t) => {
  const server = await startServer(t, makePod(t).root);
  const reply = await server.request('POST', '/v2/specialize', { headers: { 'Content-Type': 'application/json' }, body: '{"functionName":"x"}' });
  assert.equal(reply.status, 400);
  assert.match(reply.body, /filepath/);
});
