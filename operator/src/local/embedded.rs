//! The runtimes' sources, embedded in the binary (`environments/`). A test checks this list
//! against the directory, so a new runtime file cannot be forgotten.

/// Files of `environments/python`, embedded so `rivulet up` works from the binary alone.
pub const PYTHON: &[(&str, &str)] = &[
    (
        "requirements.txt",
        include_str!("../../../environments/python/requirements.txt"),
    ),
    (
        "rivulet_runtime/__init__.py",
        include_str!("../../../environments/python/rivulet_runtime/__init__.py"),
    ),
    (
        "rivulet_runtime/app.py",
        include_str!("../../../environments/python/rivulet_runtime/app.py"),
    ),
    (
        "rivulet_runtime/loader.py",
        include_str!("../../../environments/python/rivulet_runtime/loader.py"),
    ),
    (
        "rivulet_runtime/podpath.py",
        include_str!("../../../environments/python/rivulet_runtime/podpath.py"),
    ),
    (
        "rivulet_runtime/settings.py",
        include_str!("../../../environments/python/rivulet_runtime/settings.py"),
    ),
    (
        "server.py",
        include_str!("../../../environments/python/server.py"),
    ),
];

/// Files of `environments/nodejs`, embedded so `rivulet up` works from the binary alone.
pub const NODEJS: &[(&str, &str)] = &[
    (
        "lib/app.js",
        include_str!("../../../environments/nodejs/lib/app.js"),
    ),
    (
        "lib/loader.js",
        include_str!("../../../environments/nodejs/lib/loader.js"),
    ),
    (
        "lib/podpath.js",
        include_str!("../../../environments/nodejs/lib/podpath.js"),
    ),
    (
        "lib/settings.js",
        include_str!("../../../environments/nodejs/lib/settings.js"),
    ),
    (
        "package-lock.json",
        include_str!("../../../environments/nodejs/package-lock.json"),
    ),
    (
        "package.json",
        include_str!("../../../environments/nodejs/package.json"),
    ),
    (
        "server.js",
        include_str!("../../../environments/nodejs/server.js"),
    ),
];
