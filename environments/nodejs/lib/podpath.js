'use strict';

// Where an in-pod absolute path lives on this machine.
//
// In a real container `/userfunc/user` is just that. In Rivulet's local mode a pod is a local
// process and RIVULET_ROOT is the directory standing for the pod's filesystem root, so
// `/userfunc/user` becomes `$RIVULET_ROOT/userfunc/user`.

const path = require('node:path');

/**
 * Map an absolute in-pod path under `root`; relative paths and an unset root pass through.
 * The path is normalised first, so `..` can never climb above `root`.
 */
function resolvePodPath(podPath, root) {
  if (!root || !podPath.startsWith('/')) return podPath;
  const inside = path.posix.normalize(podPath).replace(/^\/+/, '');
  return inside ? path.join(root, inside) : root;
}

module.exports = { resolvePodPath };
