//! Serve a local cluster from a data directory until Ctrl-C (development aid; the product
//! command is `rivulet localcluster`).

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "/tmp/localcluster".into());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let mut config = rivulet_localcluster::Config::new(dir);
    config.api_port = port;
    let cluster = rivulet_localcluster::LocalCluster::start(config).await?;
    println!("export KUBECONFIG={}", cluster.kubeconfig_path().display());
    println!("{}", cluster.url());
    tokio::signal::ctrl_c().await?;
    cluster.shutdown().await;
    Ok(())
}
