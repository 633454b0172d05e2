// The hello world of Fission's node-env, unchanged (the seed experiment's `hello-js`).
module.exports = async function (context) {
  return {
    status: 200,
    body: 'hello, world!\n',
  };
};
