'use strict';

// The Express application: Fission node-env's routes and its one-function-per-process rule.
//
// - POST /specialize     version 1: load the file at `--codepath` (default /userfunc/user);
// - POST /v2/specialize  JSON {"filepath","functionName",...}: load that entrypoint;
//   both answer 202 on success, 500 with the reason when the code does not load, and
//   400 "Not a generic container" once a function is loaded;
// - GET /healthz         200;
// - anything else        the user function, as `fn(context)` returning (a promise of)
//   {status, body, headers}, or as `fn(context, callback)` with callback(status, body, headers).
//   Before specialization: 500 "Generic container: no requests supported".

const fs = require('node:fs');
const path = require('node:path');
const express = require('express');
const { LoadError, loadFunction } = require('./loader');
const { podPath } = require('./settings');

const NOT_GENERIC = 'Not a generic container';
const NOT_SPECIALIZED = 'Generic container: no requests supported';
const FUNCTION_FAILED = 'Internal server error';

function createApp(settings, log = console) {
  const app = express();
  const slot = { fn: null, loading: false };

  if (settings.accessLog) app.use(accessLog(log));
  // Fission's body parsers, in Fission's order and with its limit.
  const limit = settings.bodyLimit;
  app.use(express.urlencoded({ extended: false, limit }));
  app.use(express.json({ limit }));
  app.use(express.raw({ limit }));
  app.use(express.text({ type: 'text/*', limit }));

  async function specialize(res, load) {
    if (slot.fn || slot.loading) {
      res.status(400).send(NOT_GENERIC);
      return;
    }
    slot.loading = true;
    try {
      slot.fn = await load();
      res.status(202).send();
    } catch (err) {
      const reason = err instanceof LoadError ? err.message : `cannot load function: ${err}`;
      log.error(`user code load error: ${reason}`);
      res.status(500).type('text/plain').send(`${reason}\n`);
    } finally {
      slot.loading = false;
    }
  }

  app.post('/specialize', (req, res) => {
    const file = podPath(settings, settings.v1Codepath);
    linkRuntimeModules(file, settings.runtimeNodeModules, log);
    return specialize(res, () => loadFunction(file, ''));
  });

  app.post('/v2/specialize', (req, res) => {
    const body = specializeRequest(req.body);
    if (!body) {
      res.status(400).type('text/plain').send('invalid specialize request: expected a JSON object with a non-empty "filepath"\n');
      return undefined;
    }
    return specialize(res, () => loadFunction(podPath(settings, body.filepath), body.functionName || ''));
  });

  app.get('/healthz', (req, res) => {
    res.status(200).send('');
  });

  app.use((req, res) => {
    if (!slot.fn) {
      res.status(500).send(NOT_SPECIALIZED);
      return;
    }
    invoke(slot.fn, req, res, log);
  });

  // Body parser errors (malformed JSON, over the size limit) keep their status; no stack trace leaks.
  app.use((err, req, res, next) => {
    if (res.headersSent) return next(err);
    const status = err.status || err.statusCode || 500;
    res.status(status).type('text/plain').send(err.expose ? err.message : FUNCTION_FAILED);
    return undefined;
  });

  return app;
}

/** The v2 request body, whatever content type the caller gave it, or null when it is unusable. */
function specializeRequest(body) {
  let value = body;
  if (Buffer.isBuffer(value)) value = value.toString('utf8');
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return null;
    }
  }
  if (!value || typeof value !== 'object' || typeof value.filepath !== 'string' || !value.filepath) return null;
  return value;
}

/** Fission links the runtime's node_modules next to a version-1 function, so it can require them. */
function linkRuntimeModules(file, runtimeNodeModules, log) {
  const link = path.join(path.dirname(file), 'node_modules');
  try {
    if (!fs.existsSync(link) && fs.existsSync(runtimeNodeModules)) fs.symlinkSync(runtimeNodeModules, link);
  } catch (err) {
    log.warn(`could not link ${link}: ${err.message}`);
  }
}

function invoke(fn, req, res, log) {
  const context = { request: req, response: res };
  const reply = (status, body, headers) => {
    if (!status) return; // Fission's rule: no status, no answer (the function answers itself)
    if (res.headersSent) return;
    if (headers) {
      for (const name of Object.keys(headers)) res.set(name, headers[name]);
    }
    res.status(status);
    if (body && typeof body.pipe === 'function') {
      body.on('error', (err) => {
        log.error(`Function error: ${err}`);
        res.destroy(err);
      });
      body.pipe(res);
    } else {
      res.send(body);
    }
  };
  const fail = (err) => {
    log.error(`Function error: ${err && err.stack ? err.stack : err}`);
    if (!res.headersSent) reply(500, FUNCTION_FAILED);
  };

  if (fn.length <= 1) {
    let result;
    try {
      result = fn.length === 0 ? fn() : fn(context);
    } catch (err) {
      fail(err);
      return;
    }
    Promise.resolve(result)
      .then((value) => {
        if (value === undefined || value === null) {
          // Fission fails such a result with 500 unless the function already answered itself.
          if (!res.headersSent) fail(new TypeError('the function returned no {status, body, headers}'));
          return;
        }
        reply(value.status, value.body, value.headers);
      })
      .catch(fail);
  } else {
    try {
      fn(context, reply);
    } catch (err) {
      fail(err);
    }
  }
}

function accessLog(log) {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log.log(`${req.method} ${req.originalUrl} ${res.statusCode} ${ms.toFixed(1)}ms`);
    });
    next();
  };
}

module.exports = { createApp };
