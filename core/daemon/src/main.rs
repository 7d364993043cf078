//! lbd: VRRP (and later IPVS) daemon of the lb appliance.

mod api;
mod cli;
mod control;
mod events;
mod health;
mod logging;
mod lvs;
mod lvs_desired;
mod metrics;
mod node;
mod notify;
mod offline;
mod pid1;
mod plugins;
mod reload;
mod routes;
mod service;
mod setup;
mod vrrp_io;

use std::process::ExitCode;

use anyhow::Result;

fn main() -> ExitCode {
    let parsed = match cli::parse(std::env::args().skip(1)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("lbd: {e}");
            return ExitCode::from(2);
        }
    };
    let args = match parsed {
        cli::Parsed::Print(text) => {
            use std::io::Write;
            // A closed pipe (`lbd --help | head`) is not a panic.
            let _ = write!(std::io::stdout().lock(), "{text}");
            return ExitCode::SUCCESS;
        }
        cli::Parsed::Run(a) => a,
    };
    logging::init(args.log_level(), args.log_target);
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            // One line an operator can act on: the chain of causes, no backtrace.
            eprintln!("lbd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: cli::Args) -> Result<ExitCode> {
    if args.ipvs_status {
        // Needs no configuration: it only reads the kernel.
        return with_runtime(lvs::print_status()).map(|_| ExitCode::SUCCESS);
    }
    setup::set_config_id(args.config_id.as_deref());
    let path = setup::config_path(args.config.as_deref())?;
    let loaded = setup::load_config(&path)?;
    if args.check {
        return Ok(ExitCode::from(offline::check(
            &path,
            &loaded,
            &mut std::io::stdout().lock(),
        )));
    }
    if args.convert {
        offline::convert(
            "lbd",
            &loaded,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr(),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    lbd_sys::check_privileges()?;
    let api = api::ApiSocket::reserve(&args.api_socket)?;
    let listeners = api::Listeners::bind(&api, args.metrics_listen.as_deref())?;
    with_runtime(node::run(loaded.config, path, listeners))?;
    drop(api);
    Ok(ExitCode::SUCCESS)
}

/// One thread: lbd's work is I/O-bound and its RSS is measured.
fn with_runtime<F: std::future::Future<Output = Result<()>>>(f: F) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(f)
}
