'use strict';

// Test harness: a fake pod filesystem and the real runtime process on a free loopback port.
// (Kept out of test/, where node --test would run every .js file as a test.)

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const ENV_DIR = path.join(__dirname, '..');
const START_DEADLINE_MS = 20000;

/** A temporary directory standing for a pod's filesystem root (RIVULET_ROOT). */
function makePod(t) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rivulet-node-test-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const write = (podPath, source) => {
    const target = path.join(root, podPath.replace(/^\/+/, ''));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, source);
    return target;
  };
  const copyExample = (name, podPath) => write(podPath, fs.readFileSync(path.join(ENV_DIR, 'examples', name), 'utf8'));
  return { root, write, copyExample };
}

function request(port, method, urlPath, { body, headers = {} } = {}) {
  // Node's client sends a DELETE body without framing unless told its length.
  const framing = body === undefined ? {} : { 'Content-Length': Buffer.byteLength(body) };
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, method, path: urlPath, headers: { ...framing, ...headers }, agent: false };
    const req = http.request(options, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** `node server.js` with RIVULET_ROOT=root on 127.0.0.1:0; resolves once its port is known. */
function startServer(t, root, extraEnv = {}) {
  const env = { ...process.env, RIVULET_BIND_ADDRESS: '127.0.0.1', RIVULET_RUNTIME_PORT: '0', RIVULET_ROOT: root, ...extraEnv };
  const proc = spawn(process.execPath, [path.join(ENV_DIR, 'server.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  t.after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    return exited;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`runtime did not start; output: ${output}`)), START_DEADLINE_MS);
    proc.stderr.on('data', (chunk) => {
      output += chunk;
    });
    proc.stdout.on('data', (chunk) => {
      output += chunk;
      const found = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (found) {
        clearTimeout(timer);
        const port = Number(found[1]);
        resolve({
          port,
          proc,
          exited,
          output: () => output,
          request: (method, urlPath, options) => request(port, method, urlPath, options),
          specialize: (filepath, functionName) =>
            request(port, 'POST', '/v2/specialize', {
              headers: { 'Content-Type': 'application/json' },
              body: JSON.stringify({ filepath, functionName, url: '', FunctionMetadata: { name: 'f' }, envVersion: 2 }),
            }),
        });
      }
    });
    proc.on('exit', () => {
      clearTimeout(timer);
      reject(new Error(`runtime exited before listening; output: ${output}`));
    });
  });
}

module.exports = { makePod, startServer, request };
