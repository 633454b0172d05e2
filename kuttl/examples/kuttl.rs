//! `KUBECONFIG=... cargo run -p rivulet-kuttl --example kuttl -- kuttl-tests/kuttl-test.yaml [case...]`:
//! runs a KUTTL suite (or some of its cases) against the cluster in `KUBECONFIG`.

use std::path::PathBuf;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(config), Some(kubeconfig)) = (args.next(), std::env::var_os("KUBECONFIG")) else {
        eprintln!("usage: KUBECONFIG=<file> kuttl <kuttl-test.yaml> [case...]");
        return ExitCode::from(2);
    };
    let mut options = rivulet_kuttl::RunOptions::new(PathBuf::from(kubeconfig));
    options.only = args.collect();
    match rivulet_kuttl::run_suite(&PathBuf::from(config), &options).await {
        Ok(report) => {
            println!("{report}");
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
