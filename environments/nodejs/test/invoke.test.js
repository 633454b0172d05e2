'use strict';

// Invocation over HTTP against the real runtime: what the function sees and what it may return.

const assert = require('node:assert/strict');
const { test } = require('node:test');
const { makePod, startServer } = require('../test-support/harness');

const ECHO = `
module.exports = async function (context) {
  const req = context.request;
  return {
    status: 200,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      method: req.method,
      url: req.url,
      path: req.path,
      query: req.query,
      greeting: req.get('X-Greeting') || null,
      param: req.get('X-Fission-Params-User_id') || null,
      bodyType: Buffer.isBuffer(req.body) ? 'buffer' : typeof req.body,
      body: Buffer.isBuffer(req.body) ? req.body.toString('base64') : req.body,
    }),
  };
};
`;

async function serve(t, source, extraEnv) {
  const pod = makePod(t);
  pod.write('/userfunc/deployarchive/fn.js', source);
  const server = await startServer(t, pod.root, extraEnv);
  const answer = await server.specialize('/userfunc/deployarchive', 'fn');
  assert.equal(answer.status, 202, answer.body);
  return server;
}

test('the function sees method, path, query and headers', async (t) => {
  const server = await serve(t, ECHO);
  const reply = await server.request('GET', '/some/path?a=1&b=two', { headers: { 'X-Greeting': 'hi', 'X-Fission-Params-User_id': '42' } });
  assert.equal(reply.status, 200);
  assert.deepEqual(JSON.parse(reply.body), {
    method: 'GET',
    url: '/some/path?a=1&b=two',
    path: '/some/path',
    query: { a: '1', b: 'two' },
    greeting: 'hi',
    param: '42',
    bodyType: 'object',
    body: {},
  });
});

test("bodies are parsed by Fission's parsers: json, text, urlencoded, raw", async (t) => {
  const server = await serve(t, ECHO);
  const post = async (type, body) => JSON.parse((await server.request('POST', '/', { headers: { 'Content-Type': type }, body })).body);

  assert.deepEqual((await post('application/json', '{"n":1}')).body, { n: 1 });
  assert.deepEqual(await post('text/plain', 'plain words').then((r) => [r.bodyType, r.body]), ['string', 'plain words']);
  assert.deepEqual((await post('application/x-www-form-urlencoded', 'a=1&b=x+y')).body, { a: '1', b: 'x y' });
  const raw = await post('application/octet-stream', Buffer.from([0, 1, 2, 255]));
  assert.deepEqual([raw.bodyType, raw.body], ['buffer', Buffer.from([0, 1, 2, 255]).toString('base64')]);
  for (const method of ['PUT', 'PATCH', 'DELETE']) {
    const reply = await server.request(method, '/x', { headers: { 'Content-Type': 'text/plain' }, body: method });
    assert.equal(JSON.parse(reply.body).body, method);
  }
});

test('bodies over BODY_PARSER_LIMIT are refused with 413, malformed JSON with 400', async (t) => {
  const server = await serve(t, ECHO, { BODY_PARSER_LIMIT: '1kb' });
  const big = await server.request('POST', '/', { headers: { 'Content-Type': 'text/plain' }, body: 'x'.repeat(4096) });
  assert.equal(big.status, 413);
  assert.doesNotMatch(big.body, /at .*node_modules/); // no stack trace
  const bad = await server.request('POST', '/', { headers: { 'Content-Type': 'application/json' }, body: '{"n":' });
  assert.equal(bad.status, 400);
});

test('status, headers and body returned by the function reach the client', async (t) => {
  const server = await serve(t, `module.exports = async () => ({ status: 201, headers: { 'X-Answer': '42' }, body: { created: true } });\n`);
  const reply = await server.request('POST', '/');
  assert.equal(reply.status, 201);
  assert.equal(reply.headers['x-answer'], '42');
  assert.match(reply.headers['content-type'], /application\/json/);
  assert.deepEqual(JSON.parse(reply.body), { created: true });
});

test('callback style: fn(context, callback(status, body, headers))', async (t) => {
  const server = await serve(
    t,
    `module.exports = function (context, callback) {\n  setImmediate(() => callback(203, 'via callback ' + context.request.method, { 'X-Style': 'callback' }));\n};\n`,
  );
  const reply = await server.request('DELETE', '/');
  assert.deepEqual([reply.status, reply.body, reply.headers['x-style']], [203, 'via callback DELETE', 'callback']);
});

test('synchronous function without arguments, and a promise-returning one', async (t) => {
  const sync = await serve(t, `module.exports = () => ({ status: 200, body: 'sync' });\n`);
  assert.equal((await sync.request('GET', '/')).body, 'sync');
  const promised = await serve(t, `module.exports = (context) => Promise.resolve({ status: 200, body: 'promised' });\n`);
  assert.equal((await promised.request('GET', '/')).body, 'promised');
});

test('a Readable body is streamed', async (t) => {
  const server = await serve(t, `const { Readable } = require('node:stream');\nmodule.exports = async () => ({ status: 200, body: Readable.from(['a', 'b', 'c']) });\n`);
  const reply = await server.request('GET', '/');
  assert.deepEqual([reply.status, reply.body], [200, 'abc']);
});

test('the function may answer through context.response itself', async (t) => {
  const server = await serve(t, `module.exports = async (context) => { context.response.status(200).send('direct'); };\n`);
  const reply = await server.request('GET', '/');
  assert.deepEqual([reply.status, reply.body], [200, 'direct']);
});

test('a failing function answers 500 Internal server error and the runtime keeps serving', async (t) => {
  const server = await serve(t, `let n = 0;\nmodule.exports = async () => { n += 1; if (n === 1) throw new Error('boom'); return { status: 200, body: 'recovered' }; };\n`);
  const failed = await server.request('GET', '/');
  assert.deepEqual([failed.status, failed.body], [500, 'Internal server error']);
  assert.equal((await server.request('GET', '/')).body, 'recovered');
});

test('a synchronous throw in a callback-style function is a 500 too', async (t) => {
  const server = await serve(t, `module.exports = function (context, callback) { throw new Error('sync boom'); };\n`);
  const reply = await server.request('GET', '/');
  assert.deepEqual([reply.status, reply.body], [500, 'Internal server error']);
});

test('healthz answers 200 before and after specialization', async (t) => {
  const pod = makePod(t);
  pod.write('/userfunc/deployarchive/fn.js', ECHO);
  const server = await startServer(t, pod.root);
  assert.equal((await server.request('GET', '/healthz')).status, 200);
  assert.equal((await server.specialize('/userfunc/deployarchive', 'fn')).status, 202);
  assert.equal((await server.request('GET', '/healthz')).status, 200);
  // Other methods on runtime paths reach the function.
  assert.equal(JSON.parse((await server.request('GET', '/specialize')).body).path, '/specialize');
});

test('examples: hello answers the seed greeting', async (t) => {
  const pod = makePod(t);
  pod.copyExample('hello.js', '/userfunc/deployarchive');
  const server = await startServer(t, pod.root);
  assert.equal((await server.specialize('/userfunc/deployarchive', '')).status, 202);
  const reply = await server.request('GET', '/');
  assert.deepEqual([reply.status, reply.body], [200, 'hello, world!\n']);
});

test('examples: greet reads the path parameter header and the body', async (t) => {
  const pod = makePod(t);
  pod.copyExample('greet.js', '/userfunc/deployarchive/greet.js');
  const server = await startServer(t, pod.root);
  assert.equal((await server.specialize('/userfunc/deployarchive', 'greet')).status, 202);
  const headers = { 'X-Fission-Params-Name': 'Ada' };
  assert.equal((await server.request('GET', '/', { headers })).body, 'Hello, Ada!\n');
  const said = await server.request('POST', '/', { headers: { ...headers, 'Content-Type': 'text/plain' }, body: 'nice to meet you' });
  assert.equal(said.body, 'Hello, Ada! You said: nice to meet you\n');
});

test('SIGTERM stops the runtime promptly', async (t) => {
  const server = await serve(t, `module.exports = async () => ({ status: 200, body: 'ok' });\n`);
  assert.equal((await server.request('GET', '/')).body, 'ok');
  const started = Date.now();
  server.proc.kill('SIGTERM');
  const { code } = await server.exited;
  assert.equal(code, 0);
  assert.ok(Date.now() - started < 5000, 'took too long to stop');
});

test('SIGTERM does not wait for a function that never answers', async (t) => {
  const server = await serve(t, `module.exports = async () => { console.log('function started'); return new Promise(() => {}); };\n`);
  server.request('GET', '/').catch(() => {}); // the server goes away under this request
  const deadline = Date.now() + 10000;
  while (!server.output().includes('function started')) {
    assert.ok(Date.now() < deadline, 'the function never started');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const started = Date.now();
  server.proc.kill('SIGTERM');
  const { code } = await server.exited;
  assert.equal(code, 0);
  assert.ok(Date.now() - started < 5000, 'took too long to stop');
});

test('no per-request logging by default; RIVULET_ACCESS_LOG=1 turns it on', async (t) => {
  const quiet = await serve(t, `module.exports = async () => ({ status: 200, body: 'ok' });\n`);
  const before = quiet.output();
  await quiet.request('GET', '/quiet-path');
  assert.equal(quiet.output(), before);

  const chatty = await serve(t, `module.exports = async () => ({ status: 200, body: 'ok' });\n`, { RIVULET_ACCESS_LOG: '1' });
  await chatty.request('GET', '/chatty-path');
  const deadline = Date.now() + 5000;
  while (!chatty.output().includes('GET /chatty-path 200') && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.match(chatty.output(), /GET \/chatty-path 200/);
});
