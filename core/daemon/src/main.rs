//! lbd: VRRP (and later IPVS) daemon of the lb appliance.

mod api;
mod cli;
mod events;
mod health;
mod lvs;
mod lvs_desired;
mod metrics;
mod node;
mod notify;
mod pid1;
mod plugins;
mod reload;
mod routes;
mod setup;
mod vrrp_io;

use std::process::ExitCode;

use anyhow::Result;
use tracing_subscriber::EnvFilter;

/// `--check`: the configuration loads, but only after lbd repaired or
/// ignored something (keepalived's KEEPALIVED_CHK_EXIT_CONFIG_TEST).
const EXIT_REPAIRED: u8 = 5;

fn main() -> ExitCode {
    let parsed = match cli::parse(std::env::args().skip(1)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("lbd: {e}");
            return ExitCode::from(2);
        }
    };
    let args = match parsed {
        cli::Parsed::Help => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        cli::Parsed::Version => {
            println!("lbd {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        cli::Parsed::Run(a) => a,
    };
    init_logging(args.log_level.as_deref());
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            // One line an operator can act on: the chain of causes, no backtrace.
            eprintln!("lbd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: Option<&str>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level.unwrap_or("info")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
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
        // write! rather than println!: a closed pipe (`lbd --check | head`) is not a panic.
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for w in &loaded.warnings {
            let _ = writeln!(out, "{w}");
        }
        let repaired = loaded
            .warnings
            .iter()
            .filter(|w| w.kind == lbd_config::WarningKind::Repaired)
            .count();
        let _ = writeln!(
            out,
            "{}: {} ({} vrrp instance(s), {} sync group(s), {} virtual server(s), {} warning(s), {} repaired or ignored)",
            path.display(),
            if repaired == 0 { "ok" } else { "loads with repairs" },
            loaded.config.instances.len(),
            loaded.config.sync_groups.len(),
            loaded.config.virtual_servers.len(),
            loaded.warnings.len(),
            repaired,
        );
        // keepalived -t exits 5 when it had to repair the configuration.
        return Ok(ExitCode::from(if repaired == 0 {
            0
        } else {
            EXIT_REPAIRED
        }));
    }
    if args.convert {
        // The TOML keeps them as comments; the operator hears of them here.
        for s in &loaded.config.skipped_checks {
            eprintln!(
                "lbd: {}: warning: {} is not converted (lbd does not run it): the real server is treated as up",
                s.span, s.kind
            );
        }
        use std::io::Write;
        let toml = lbd_config::to_toml(&loaded.config).map_err(|e| {
            anyhow::anyhow!("--convert: cannot write the configuration as TOML: {e}")
        })?;
        let _ = write!(std::io::stdout().lock(), "{toml}");
        return Ok(ExitCode::SUCCESS);
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    lbd_sys::check_privileges()?;
    let _api = api::ApiSocket::reserve(&args.api_socket)?;
    with_runtime(node::run(loaded.config, path))?;
    Ok(ExitCode::SUCCESS)
}

/// One thread: lbd's work is I/O-bound and its RSS is measured.
fn with_runtime<F: std::future::Future<Output = Result<()>>>(f: F) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(f)
}
