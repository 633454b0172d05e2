//! Fission's seed workflow through a `fission` symlink to the built `rivulet` binary, against
//! one `rivulet up` (issue 20): the four seed commands verbatim answer `Hello, World!`, then
//! `fn test`, `fn logs`, `fn update --code`, and failed creations that leave nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use rivulet_testing::{UpProcess, eventually, http};

const WAIT: Duration = Duration::from_mins(2);

const HELLO: &str = "def main():\n    print(\"hello from the function\", flush=True)\n    return \"Hello, World!\\n\"\n";
const HELLO_AGAIN: &str = "def main():\n    return \"Hello again!\\n\"\n";

/// A directory holding the `fission` symlink and the user's files, used as the working
/// directory of every command (so `--code hello_world.py` is the seed's relative path).
struct Workdir {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    router: String,
}

impl Workdir {
    fn new(up: &UpProcess) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rivulet"), dir.path().join("fission"))
            .unwrap();
        Self {
            dir,
            kubeconfig: up.kubeconfig.clone(),
            router: up.router.clone(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `fission <command line>`, split on whitespace as a shell would for these commands.
    fn fission(&self, line: &str) -> Output {
        let args: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(args[0], "fission", "{line}");
        Command::new(self.path().join("fission"))
            .args(&args[1..])
            .current_dir(self.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .env("FISSION_ROUTER_URL", &self.router)
            .output()
            .unwrap()
    }

    /// Runs `line`, asserts it succeeded, returns its stdout.
    fn ok(&self, line: &str) -> String {
        let out = self.fission(line);
        assert!(
            out.status.success(),
            "{line}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `line`, asserts it failed with a one-line `Error:` on stderr, returns that line.
    fn fails(&self, line: &str) -> String {
        let out = self.fission(line);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{line} should fail: {stderr}");
        let error: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("Error: "))
            .collect();
        assert_eq!(error.len(), 1, "{line}: {stderr}");
        error[0].to_owned()
    }

    async fn expect_get(&self, path: &str, expected: &str) {
        let url = format!("{}{path}", self.router);
        eventually(WAIT, &format!("GET {path} -> {expected:?}"), || {
            let url = url.clone();
            async move {
                let (code, text) = http("GET", &url, "").await.map_err(|e| e.to_string())?;
                if code == 200 && text.contains(expected) {
                    Ok(())
                } else {
                    Err(format!("{code} {text:?}"))
                }
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fission_seed_workflow_through_the_cli() {
    let up = UpProcess::start(Path::new(env!("CARGO_BIN_EXE_rivulet")), &[]);
    let w = Workdir::new(&up);
    std::fs::write(w.path().join("hello_world.py"), HELLO).unwrap();

    // The seed, verbatim.
    let out = w.ok("fission env create --name python --image fission/python-env");
    assert_eq!(out, "environment 'python' created\n");
    let out = w.ok(
        "fission function create --name hello_world --env python --code hello_world.py --url /hello_world --method GET",
    );
    assert!(
        out.ends_with("route created: [GET] /hello_world -> hello_world\n"),
        "{out}"
    );
    let out = w.ok("fission env get --name python");
    assert_eq!(out, "NAME   IMAGE\npython fission/python-env\n");
    // curl $ROUTER/hello_world
    w.expect_get("/hello_world", "Hello, World!").await;

    // fn test through the router, fn logs with what the function printed.
    assert_eq!(
        w.ok("fission fn test --name hello_world"),
        "Hello, World!\n"
    );
    let logs = w.ok("fission fn logs --name hello_world --detail");
    assert!(
        logs.contains("=== Function=hello-world Environment=python"),
        "{logs}"
    );
    assert!(logs.contains("hello from the function"), "{logs}");
    let listed = w.ok("fission fn list");
    assert!(
        listed.contains("hello-world") && listed.contains("poolmgr"),
        "{listed}"
    );

    // fn update --code: the package changes and the function's packageref follows it.
    std::fs::write(w.path().join("hello_world.py"), HELLO_AGAIN).unwrap();
    w.ok("fission fn update --name hello_world --code hello_world.py");
    w.expect_get("/hello_world", "Hello again!").await;

    // An unknown environment: nothing is created.
    let packages_before = w.ok("fission pkg list");
    let error =
        w.fails("fission fn create --name orphan --env nope --code hello_world.py --url /orphan");
    assert!(
        error.contains("environment 'nope' not found in namespace 'default'"),
        "{error}"
    );
    // A name the API server refuses for the Function after its Package was created (64
    // characters; the package name is shortened to fit): the Package is rolled back.
    let long = "a".repeat(64);
    let error = w.fails(&format!(
        "fission fn create --name {long} --env python --code hello_world.py --url /long"
    ));
    assert!(
        error.contains("error creating function") && error.contains("metadata.name"),
        "{error}"
    );
    // A missing file.
    let error = w.fails("fission fn create --name missing --env python --code nothere.py");
    assert!(error.contains("nothere.py: no such file"), "{error}");
    assert_eq!(w.ok("fission pkg list"), packages_before);
    let routes = w.ok("fission route list");
    assert!(
        !routes.contains("/orphan") && !routes.contains("/long"),
        "{routes}"
    );
    assert_eq!(
        w.ok("fission fn list").lines().count(),
        2,
        "only hello-world"
    );

    five_megabyte_deploy_zip_goes_through_archive_storage(&up, &w).await;
    archive_commands_round_trip(&w);

    // fn test answers an HTTP error with a non-zero exit.
    std::fs::write(
        w.path().join("boom.py"),
        "def main():\n    raise RuntimeError('boom')\n",
    )
    .unwrap();
    w.ok("fission fn create --name boom --env python --code boom.py --url /boom");
    let error = w.fails("fission fn test --name boom");
    assert_eq!(error, "Error: error getting function response");
}

/// A 5 MB `--deploy` directory is zipped, uploaded to `rivulet up`'s archive storage (over the
/// 256 KiB literal limit), recorded as a URL with its sha256, and served.
async fn five_megabyte_deploy_zip_goes_through_archive_storage(up: &UpProcess, w: &Workdir) {
    let client = rivulet_testing::client_for(&up.kubeconfig).await.unwrap();
    let dir = w.path().join("big");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("main.py"),
        "def main():\n    return \"big hello\\n\"\n",
    )
    .unwrap();
    // Incompressible bytes, so the zip stays over 5 MB.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let blob: Vec<u8> = (0..5 * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    std::fs::write(dir.join("blob.bin"), blob).unwrap();
    w.ok(
        "fission fn create --name big --env python --deploy big --entrypoint main.main --url /big",
    );
    w.expect_get("/big", "big hello").await;
    let packages: kube::Api<rivulet_api::Package> =
        kube::Api::namespaced(client.clone(), "default");
    let big = packages
        .list(&kube::api::ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|p| {
            p.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("big-"))
        })
        .expect("the big package");
    let deployment = big.spec.deployment.unwrap();
    assert_eq!(deployment.archive_type.as_deref(), Some("url"));
    assert!(deployment.literal.is_none());
    assert!(deployment.url.unwrap().contains("/v1/archive?id="));
    assert_eq!(deployment.checksum.unwrap().sum.unwrap().len(), 64);
}

/// `archive upload`, `list`, `get-url`, `download` (byte-equal), `delete`, against `rivulet up`'s
/// storage.
fn archive_commands_round_trip(w: &Workdir) {
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(w.path().join("up.bin"), &bytes).unwrap();
    let out = w.ok("fission archive upload --name up.bin");
    let id = out
        .strip_prefix("File successfully uploaded with ID: ")
        .unwrap_or_else(|| panic!("{out}"))
        .trim()
        .to_owned();
    let listed = w.ok("fission archive list");
    assert!(listed.starts_with("ARCHIVES\n"), "{listed}");
    assert!(listed.lines().any(|l| l == id), "{listed}");
    let url = w.ok(&format!("fission archive get-url --id {id}"));
    assert!(
        url.starts_with("URL: http://") && url.contains(&id),
        "{url}"
    );
    let out = w.ok(&format!("fission ar download --id {id} -o down.bin"));
    assert_eq!(out, "File download complete. File name: down.bin\n");
    assert_eq!(std::fs::read(w.path().join("down.bin")).unwrap(), bytes);
    assert_eq!(
        w.ok(&format!("fission archive delete --id {id}")),
        format!("Deleted archive with id: {id}\n")
    );
    let listed = w.ok("fission archive list");
    assert!(!listed.lines().any(|l| l == id), "{listed}");
    let error = w.fails(&format!("fission archive download --id {id}"));
    assert!(error.contains("not found"), "{error}");
}
