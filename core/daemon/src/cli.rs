//! Command line of `lbd`. Hand-written: a handful of flags does not justify a
//! parser dependency in a binary whose size and RSS we measure.

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: lbd [-f|--config FILE] [--check] [--api-socket PATH] [--log-level LEVEL]

  -f, --config FILE     keepalived.conf (any name) or lbd TOML (*.toml)
                        default: /etc/lb/lbd.toml, else /etc/keepalived/keepalived.conf
      --check           validate the configuration and print every finding;
                        exit 0: loads as written, 1: refused (errors),
                        5: loads, but only with repairs or ignored parts
      --convert         print the configuration as lbd TOML and exit
      --ipvs-status     print the kernel's IPVS table as lbd reads it
                        (the shape of `ipvsadm -Ln`) and exit
  -i, --config-id ID    selects keepalived.conf's `@ID` lines (default: the
                        hostname up to its first dot, as keepalived does)
      --api-socket PATH control socket (default /run/lbd/lbd.sock)
      --metrics-listen ADDR:PORT  also serve /metrics (only) on TCP
      --log-level LEVEL error|warn|info|debug|trace (default info; RUST_LOG wins)
  -D, --log-detail      same as --log-level debug (keepalived's -D)
  -n, --dont-fork, -l, --log-console
                        accepted for keepalived compatibility: lbd always runs
                        in the foreground and logs to stderr
  -h, --help            this text

signals: SIGTERM/SIGINT stop (priority 0, VIPs removed), SIGHUP reloads the
configuration (IPVS changes applied as a diff), SIGUSR1 logs the counters
  -V, --version         print the version
";

#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    pub config: Option<PathBuf>,
    pub check: bool,
    pub convert: bool,
    pub ipvs_status: bool,
    pub api_socket: PathBuf,
    pub metrics_listen: Option<String>,
    pub log_level: Option<String>,
    pub config_id: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Args),
    Help,
    Version,
}

pub fn parse<I: IntoIterator<Item = String>>(argv: I) -> Result<Parsed, String> {
    let mut args = Args {
        config: None,
        check: false,
        convert: false,
        ipvs_status: false,
        api_socket: PathBuf::from("/run/lbd/lbd.sock"),
        metrics_listen: None,
        log_level: None,
        config_id: None,
    };
    let mut it = argv.into_iter();
    while let Some(a) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-f" | "--config" | "--use-file" => args.config = Some(PathBuf::from(value(&flag)?)),
            "--check" | "-t" | "--config-test" => args.check = true,
            "--convert" => args.convert = true,
            "--ipvs-status" => args.ipvs_status = true,
            "-i" | "--config-id" => args.config_id = Some(value(&flag)?),
            "--api-socket" => args.api_socket = PathBuf::from(value(&flag)?),
            "--metrics-listen" => args.metrics_listen = Some(value(&flag)?),
            "--log-level" => args.log_level = Some(value(&flag)?),
            "-D" | "--log-detail" => args.log_level = Some("debug".into()),
            "-n" | "--dont-fork" | "-l" | "--log-console" | "-P" | "--vrrp" => {}
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            other => return Err(format!("unknown argument '{other}' (try --help)")),
        }
    }
    Ok(Parsed::Run(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Parsed, String> {
        parse(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn config_and_socket() {
        let Ok(Parsed::Run(a)) = p(&["-f", "/x.conf", "--api-socket=/tmp/a.sock", "--check"])
        else {
            panic!("parse failed");
        };
        assert_eq!(a.config, Some(PathBuf::from("/x.conf")));
        assert_eq!(a.api_socket, PathBuf::from("/tmp/a.sock"));
        assert!(a.check);
    }

    #[test]
    fn keepalived_flags_accepted() {
        assert!(matches!(
            p(&["-n", "-l", "-D", "--use-file", "k.conf"]),
            Ok(Parsed::Run(_))
        ));
    }

    #[test]
    fn errors() {
        assert!(p(&["-f"]).is_err());
        assert!(p(&["--bogus"]).is_err());
        assert_eq!(p(&["-h"]), Ok(Parsed::Help));
    }
}
