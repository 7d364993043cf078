//! Command line of `lbd` (clap, derive), with keepalived's spellings of the
//! flags an existing unit file or script may pass.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

const AFTER_HELP: &str = "\
--check exits 0 when the configuration loads as written, 1 when it is
refused, 5 when it loads only with repairs or ignored parts.

signals: SIGTERM/SIGINT stop (priority 0, VIPs removed), SIGHUP reloads the
configuration (IPVS changes applied as a diff), SIGUSR1 logs the counters.
Under systemd (Type=notify) lbd reports READY, STATUS, RELOADING, STOPPING
and, when WatchdogSec= is set, WATCHDOG pings from its event loop.";

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogTarget {
    /// journald when /run/systemd/journal/socket exists, else stderr
    Auto,
    /// the journal's native protocol, with LBD_* fields
    Journald,
    /// plain lines on stderr
    Stderr,
}

#[derive(Debug, PartialEq, Eq, Parser)]
#[command(
    name = "lbd",
    version,
    about = "VRRP and IPVS daemon of the lb appliance (keepalived.conf or lbd TOML)",
    after_help = AFTER_HELP,
    // As the hand-written parser did: a repeated flag is no error, the last wins.
    args_override_self = true
)]
pub struct Args {
    /// keepalived.conf (any name) or lbd TOML (*.toml); default
    /// /etc/lb/lbd.toml, else /etc/keepalived/keepalived.conf
    #[arg(short = 'f', long, visible_alias = "use-file", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate the configuration, print every finding and exit
    #[arg(short = 't', long, visible_alias = "config-test")]
    pub check: bool,
    /// Print the configuration as lbd TOML and exit
    #[arg(long)]
    pub convert: bool,
    /// Print the kernel's IPVS table as lbd reads it (the shape of
    /// `ipvsadm -Ln`) and exit
    #[arg(long)]
    pub ipvs_status: bool,
    /// Control socket
    #[arg(long, value_name = "PATH", default_value = "/run/lbd/lbd.sock")]
    pub api_socket: PathBuf,
    /// Also serve /metrics (only) on TCP, for Prometheus
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,
    /// error|warn|info|debug|trace, or a tracing filter (default info;
    /// RUST_LOG wins)
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Selects keepalived.conf's `@ID` lines (default: the hostname up to
    /// its first dot, as keepalived does)
    #[arg(short = 'i', long, value_name = "ID")]
    pub config_id: Option<String>,
    /// Where logs go
    #[arg(long, value_enum, value_name = "TARGET", default_value_t = LogTarget::Auto)]
    pub log_target: LogTarget,
    /// Same as --log-level debug (keepalived's -D)
    #[arg(short = 'D', long)]
    pub log_detail: bool,
    /// keepalived's "log to the console": same as --log-target stderr
    #[arg(short = 'l', long)]
    pub log_console: bool,
    /// Accepted for keepalived compatibility: lbd always runs in the
    /// foreground
    #[arg(short = 'n', long)]
    pub dont_fork: bool,
    /// Accepted for keepalived compatibility: lbd always runs VRRP
    #[arg(short = 'P', long)]
    pub vrrp: bool,
}

impl Args {
    /// The log level after keepalived's -D: an explicit --log-level wins.
    pub fn log_level(&self) -> Option<&str> {
        match (&self.log_level, self.log_detail) {
            (Some(l), _) => Some(l),
            (None, true) => Some("debug"),
            (None, false) => None,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Args),
    /// The text to print on stdout (help or version), then exit 0.
    Print(String),
}

/// Bad usage is `Err` with one line (no usage dump): lbd runs under service
/// managers whose logs show the first line only.
pub fn parse<I: IntoIterator<Item = String>>(argv: I) -> Result<Parsed, String> {
    let argv = std::iter::once("lbd".to_string()).chain(argv);
    let parsed = Args::command()
        .try_get_matches_from(argv)
        .and_then(|m| Ok((Args::from_arg_matches(&m)?, m)));
    match parsed {
        Ok((mut a, m)) => {
            // keepalived's -l means the console; an explicit --log-target wins.
            if a.log_console && m.value_source("log_target") != Some(ValueSource::CommandLine) {
                a.log_target = LogTarget::Stderr;
            }
            Ok(Parsed::Run(a))
        }
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                Ok(Parsed::Print(e.render().to_string()))
            }
            _ => {
                let text = e.render().to_string();
                let first = text.lines().next().unwrap_or("bad usage");
                Err(format!(
                    "{} (try --help)",
                    first.strip_prefix("error: ").unwrap_or(first)
                ))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Parsed, String> {
        parse(v.iter().map(|s| s.to_string()))
    }

    fn run(v: &[&str]) -> Args {
        match p(v) {
            Ok(Parsed::Run(a)) => a,
            other => panic!("{v:?}: {other:?}"),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn config_and_socket() {
        let a = run(&["-f", "/x.conf", "--api-socket=/tmp/a.sock", "--check"]);
        assert_eq!(a.config, Some(PathBuf::from("/x.conf")));
        assert_eq!(a.api_socket, PathBuf::from("/tmp/a.sock"));
        assert!(a.check);
    }

    #[test]
    fn defaults() {
        let a = run(&[]);
        assert_eq!(a.config, None);
        assert_eq!(a.api_socket, PathBuf::from("/run/lbd/lbd.sock"));
        assert_eq!(a.log_level(), None);
        assert_eq!(a.log_target, LogTarget::Auto);
        assert!(!a.check && !a.convert && !a.ipvs_status);
    }

    #[test]
    fn config_aliases_and_value_forms() {
        for v in [
            &["-f", "k.conf"][..],
            &["-fk.conf"],
            &["--config", "k.conf"],
            &["--config=k.conf"],
            &["--use-file", "k.conf"],
            &["--use-file=k.conf"],
        ] {
            assert_eq!(run(v).config, Some(PathBuf::from("k.conf")), "{v:?}");
        }
    }

    #[test]
    fn check_aliases() {
        for f in ["--check", "-t", "--config-test"] {
            assert!(run(&[f]).check, "{f}");
        }
        assert!(run(&["--convert"]).convert);
        assert!(run(&["--ipvs-status"]).ipvs_status);
    }

    #[test]
    fn config_id() {
        assert_eq!(run(&["-i", "lb1"]).config_id.as_deref(), Some("lb1"));
        assert_eq!(run(&["--config-id=lb2"]).config_id.as_deref(), Some("lb2"));
    }

    #[test]
    fn log_level_and_detail() {
        assert_eq!(run(&["--log-level", "trace"]).log_level(), Some("trace"));
        assert_eq!(run(&["-D"]).log_level(), Some("debug"));
        assert_eq!(run(&["--log-detail"]).log_level(), Some("debug"));
        // An explicit level wins over -D, in either order.
        assert_eq!(run(&["-D", "--log-level=warn"]).log_level(), Some("warn"));
        assert_eq!(run(&["--log-level=warn", "-D"]).log_level(), Some("warn"));
    }

    #[test]
    fn log_target() {
        assert_eq!(
            run(&["--log-target", "journald"]).log_target,
            LogTarget::Journald
        );
        assert_eq!(run(&["--log-target=stderr"]).log_target, LogTarget::Stderr);
        // keepalived's -l means the console; an explicit target wins.
        assert_eq!(run(&["-l"]).log_target, LogTarget::Stderr);
        assert_eq!(
            run(&["-l", "--log-target", "journald"]).log_target,
            LogTarget::Journald
        );
        assert!(p(&["--log-target", "syslog"]).is_err());
    }

    #[test]
    fn keepalived_flags_accepted() {
        let a = run(&["-n", "-l", "-D", "-P", "--use-file", "k.conf"]);
        assert_eq!(a.config, Some(PathBuf::from("k.conf")));
        run(&["--dont-fork", "--log-console", "--vrrp", "-nlD"]);
        let a = run(&["-f", "a.conf", "--config=b.conf"]);
        assert_eq!(a.config, Some(PathBuf::from("b.conf")));
    }

    #[test]
    fn errors_are_one_line() {
        for v in [
            &["-f"][..],
            &["--config"],
            &["--bogus"],
            &["extra-positional"],
            &["--check=yes"],
        ] {
            let e = p(v).expect_err(&format!("{v:?} accepted"));
            assert_eq!(e.lines().count(), 1, "{v:?}: {e}");
            assert!(e.ends_with("(try --help)"), "{v:?}: {e}");
        }
        let e = p(&["--bogus"]).unwrap_err();
        assert!(e.contains("--bogus"), "{e}");
    }

    #[test]
    fn help_and_version() {
        let Ok(Parsed::Print(h)) = p(&["-h"]) else {
            panic!("-h");
        };
        for f in [
            "--config",
            "--use-file",
            "--api-socket",
            "--log-target",
            "-D",
        ] {
            assert!(h.contains(f), "help lacks {f}:\n{h}");
        }
        assert_eq!(
            p(&["--help"]).map(|x| matches!(x, Parsed::Print(_))),
            Ok(true)
        );
        let Ok(Parsed::Print(v)) = p(&["-V"]) else {
            panic!("-V");
        };
        assert_eq!(v.trim(), format!("lbd {}", env!("CARGO_PKG_VERSION")));
    }
}
