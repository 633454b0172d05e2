//! Local mode (`rivulet up`): everything on one machine.

mod embedded;
pub mod runtimes;

use rivulet_reconcilers::environment::pool_pod::PoolPodConfig;

/// Pool and function pods for the local node agent: the fetcher image maps to this binary (its
/// command comes from the image table), and no service account is needed. `rivulet up` uses it,
/// and so does `rivulet controller --local-pods` against a `rivulet up --no-controller`.
pub fn local_pods() -> PoolPodConfig {
    PoolPodConfig {
        fetcher_image: runtimes::FETCHER_IMAGE.into(),
        fetcher_command: Vec::new(),
        service_account: None,
        ..PoolPodConfig::default()
    }
}
