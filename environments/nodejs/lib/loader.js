'use strict';

// Finding and loading the user function, with Fission node-env's entrypoint rules:
//
// - "file.func" -> module `file` in the code directory, export `func`;
// - "file"      -> module `file`, its default export (`module.exports` or `export default`);
// - ""          -> the code path itself when it is a file; in a directory the only JS file,
//                  else package.json `main`, else index.js / index.mjs / index.cjs / main.js,
//                  else the first JS file.
//
// CommonJS and ES modules both load: `require` first, `import()` when require cannot.
// Every failure is a LoadError whose message is meant for the person who wrote the function.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const JS_EXTENSIONS = ['.js', '.cjs', '.mjs'];
const DEFAULT_FILES = ['index.js', 'index.mjs', 'index.cjs', 'main.js'];

class LoadError extends Error {}

/** Fission's split of an entrypoint: 'file.func' -> {file, func}; 'file' -> {file}; '' -> {}. */
function splitEntrypoint(functionName) {
  if (!functionName) return {};
  if (!functionName.includes('.')) return { file: functionName };
  const [file, func] = functionName.split('.');
  return { file: file || undefined, func: func || undefined };
}

function statOrNull(p) {
  try {
    return fs.statSync(p);
  } catch {
    return null;
  }
}

function isFile(p) {
  const stat = statOrNull(p);
  return stat !== null && stat.isFile();
}

/** `name` as Node would find it: the file itself, or with a JS extension, or as a package directory. */
function probe(name) {
  if (isFile(name)) return name;
  for (const ext of JS_EXTENSIONS) {
    if (isFile(name + ext)) return name + ext;
  }
  const stat = statOrNull(name);
  if (stat !== null && stat.isDirectory()) return packageEntry(name);
  return null;
}

function packageEntry(dir) {
  const main = packageMain(dir);
  if (main) return main;
  const found = DEFAULT_FILES.find((name) => isFile(path.join(dir, name)));
  return found ? path.join(dir, found) : null;
}

function packageMain(dir) {
  const manifest = path.join(dir, 'package.json');
  if (!isFile(manifest)) return null;
  try {
    const { main } = JSON.parse(fs.readFileSync(manifest, 'utf8'));
    if (typeof main !== 'string' || !main) return null;
    const target = path.join(dir, main);
    return isFile(target) ? target : JS_EXTENSIONS.map((ext) => target + ext).find(isFile) || null;
  } catch {
    return null; // an unreadable package.json is as good as none
  }
}

/** The entry file of a code directory when the entrypoint names no module. */
function defaultEntry(dir) {
  const scripts = fs
    .readdirSync(dir)
    .filter((name) => JS_EXTENSIONS.includes(path.extname(name)) && isFile(path.join(dir, name)))
    .sort();
  if (scripts.length === 1) return path.join(dir, scripts[0]);
  return packageEntry(dir) || (scripts.length > 0 ? path.join(dir, scripts[0]) : null);
}

/** The file to load for `functionName` under `filepath` (a file or a directory). */
function resolveEntryFile(filepath, functionName) {
  const stat = statOrNull(filepath);
  if (stat === null) throw new LoadError(`cannot load function: ${filepath} does not exist`);
  // A single-file package: the module part of the entrypoint has nothing to choose from.
  if (!stat.isDirectory()) return filepath;
  const { file } = splitEntrypoint(functionName);
  if (!file) {
    const entry = defaultEntry(filepath);
    if (!entry) throw new LoadError(`cannot load function: no JavaScript file in ${filepath}`);
    return entry;
  }
  const entry = probe(path.join(filepath, file));
  if (!entry) throw new LoadError(`cannot load function: module '${file}' not found in ${filepath}`);
  return entry;
}

async function loadModule(file) {
  try {
    return require(file);
  } catch (err) {
    // ES modules that require() cannot take (older Node 20, or top-level await) go through import().
    if (err && (err.code === 'ERR_REQUIRE_ESM' || err.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
      return import(pathToFileURL(file).href);
    }
    throw err;
  }
}

function pickExport(mod, func, file) {
  if (func) {
    const named = mod?.[func] ?? mod?.default?.[func];
    if (typeof named !== 'function') {
      throw new LoadError(`entrypoint '${func}' is not a function exported by ${file}`);
    }
    return named;
  }
  const main = typeof mod === 'function' ? mod : mod?.default;
  if (typeof main !== 'function') {
    throw new LoadError(`${file} does not export a function (module.exports or export default)`);
  }
  return main;
}

function syntaxErrorLocation(text, codeDir) {
  const head = text.split('\nSyntaxError:')[0].replace(/^file:\/\//, '').trimEnd();
  return head && head !== text.trimEnd() && head.startsWith(codeDir) ? head : null;
}

function checkSyntax(file) {
  const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10000 });
  return check.stderr || '';
}

/** The text of a load error: where a syntax error is, or the error and the user frame it came from. */
function describeError(err, file) {
  const codeDir = path.dirname(file);
  if (!(err instanceof Error)) return String(err);
  const stack = typeof err.stack === 'string' ? err.stack : '';
  // Node appends the require stack (runtime files) to "Cannot find module"; the first line says it all.
  const message = err.code === 'MODULE_NOT_FOUND' ? err.message.split('\n')[0] : err.message;
  if (err instanceof SyntaxError) {
    // For CommonJS, V8 puts "file:line", the source line and a caret before the message; an ES
    // module's error has no location, so `node --check` (only on this failure path) finds it.
    const where = syntaxErrorLocation(stack, codeDir) || syntaxErrorLocation(checkSyntax(file), codeDir);
    if (where) return `${where}\n${err.name}: ${message}`;
  }
  const frame = stack.split('\n').find((line) => line.trim().startsWith('at ') && line.includes(codeDir));
  return frame ? `${err.name}: ${message}\n    ${frame.trim()}` : `${err.name}: ${message}`;
}

/** Load the entrypoint `functionName` from `filepath`; resolves to the function or rejects with LoadError. */
async function loadFunction(filepath, functionName) {
  const file = resolveEntryFile(filepath, functionName);
  let mod;
  try {
    mod = await loadModule(file);
  } catch (err) {
    throw new LoadError(`cannot load ${file}:\n${describeError(err, file)}`);
  }
  return pickExport(mod, splitEntrypoint(functionName).func, file);
}

module.exports = { LoadError, loadFunction, resolveEntryFile, splitEntrypoint };
