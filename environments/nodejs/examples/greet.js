// Reads a path parameter and the request body, the way Fission functions do.
//
// Meant for an HTTPTrigger with `relativeurl: /greet/{name}` (GET or POST): Fission's router
// passes each `{var}` of the URL template as the header `X-Fission-Params-<Var>`; Express
// lower-cases header names. A text/* body arrives as a string (Fission's text body parser).
module.exports = async function (context) {
  const name = context.request.get('X-Fission-Params-Name') || 'stranger';
  const message = typeof context.request.body === 'string' ? context.request.body : '';
  return {
    status: 200,
    headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    body: message ? `Hello, ${name}! You said: ${message}\n` : `Hello, ${name}!\n`,
  };
};
