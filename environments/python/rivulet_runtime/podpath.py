"""Where an in-pod absolute path lives on this machine.

In a real container `/userfunc/user` is just that. In Rivulet's local mode a pod is a local
process and `RIVULET_ROOT` is the directory that stands for the pod's filesystem root, so
`/userfunc/user` becomes `$RIVULET_ROOT/userfunc/user`.
"""

import os
import posixpath


def resolve_pod_path(path, root):
    """Map an absolute in-pod path under `root`; relative paths and an unset root pass through.

    The path is normalised first, so `..` can never climb above `root`.
    """
    if not root or not path.startswith("/"):
        return path
    inside = posixpath.normpath(path).lstrip("/")
    return os.path.join(root, inside) if inside else root
