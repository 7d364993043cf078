//! What the packaging tests run: the static release binaries (as
//! `scripts/dist` builds them) and Docker containers of the FROM-scratch
//! image, each removed by its guard on every exit path.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::lab::{run, target_dir, Lab};

/// The static build's target (see scripts/dist).
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The static `bin` (lbd or lbctl): `LBD_STATIC_DIR/<bin>`, else
/// `target/x86_64-unknown-linux-gnu/release/<bin>`, else `dist/<bin>`.
/// Panics when none exists or the one found is dynamically linked.
pub fn static_bin(bin: &str) -> PathBuf {
    let mut tried = Vec::new();
    if let Some(d) = std::env::var_os("LBD_STATIC_DIR") {
        tried.push(PathBuf::from(d).join(bin));
    }
    tried.push(target_dir().join(TARGET).join("release").join(bin));
    tried.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../dist")
            .join(bin),
    );
    let Some(p) = tried.iter().find(|p| p.is_file()) else {
        panic!(
            "no static {bin}: looked at {tried:?}; build it with scripts/dist \
             (scripts/test lab does)"
        );
    };
    let bytes = fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
    match has_interp(&bytes) {
        Some(false) => p.clone(),
        Some(true) => panic!(
            "{} is dynamically linked (it names an ELF interpreter): build it with scripts/dist",
            p.display()
        ),
        None => panic!("{} is not a 64-bit ELF executable", p.display()),
    }
}

/// Whether a 64-bit little-endian ELF file has a PT_INTERP program header
/// (a dynamic loader to run it); None when it is not such a file.
fn has_interp(elf: &[u8]) -> Option<bool> {
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let phoff = usize::try_from(u64::from_le_bytes(elf.get(0x20..0x28)?.try_into().ok()?)).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        let p_type = u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?);
        if p_type == PT_INTERP {
            return Some(true);
        }
    }
    Some(false)
}

/// `docker ARGS`, status unchecked.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn docker {args:?}: {e}"))
}

/// `docker ARGS`, panicking with its output when it fails; stdout trimmed.
pub fn docker_ok(args: &[&str]) -> String {
    let mut v = vec!["docker"];
    v.extend_from_slice(args);
    String::from_utf8_lossy(&run(&v).stdout).trim().to_string()
}

/// Panics unless a Docker engine answers (scripts/test lab starts one).
pub fn require_docker(test: &str) {
    let out = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "{test}: no Docker engine answers ({}); scripts/test lab starts one (Debian docker.io)",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!("{test}: docker not found ({e}): install Debian's docker.io"),
    }
}

/// Remove containers and images left by killed runs of `lab`'s test (named
/// `<stem>-<pid>-...` as the lab's namespaces are, with that pid gone): a
/// SIGKILLed test runs no drop.
pub fn remove_leftovers(lab: &Lab) {
    let mut parts = lab.base.rsplitn(3, '-');
    let (Some(_), Some(_), Some(stem)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let prefix = format!("{stem}-");
    let stale = |name: &str| {
        name.strip_prefix(&prefix)
            .and_then(|r| r.split('-').next()?.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    };
    let list = |args: &[&str]| -> Vec<String> {
        String::from_utf8_lossy(&docker(args).stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    for name in list(&["ps", "-a", "--format", "{{.Names}}"]) {
        if stale(&name) {
            let _ = docker(&["rm", "-f", &name]);
        }
    }
    for repo in list(&["images", "--format", "{{.Repository}}"]) {
        if stale(&repo) {
            let _ = docker(&["rmi", "-f", &repo]);
        }
    }
}

/// An image built for one test, removed on drop.
pub struct Image {
    pub tag: String,
}

impl Image {
    /// `docker build -f containerfile -t tag context`.
    pub fn build(containerfile: &Path, context: &Path, tag: &str) -> Image {
        let (f, c) = (
            containerfile.to_str().unwrap(),
            context.to_str().unwrap().to_owned(),
        );
        // The guard first: a half-built tag is removed too.
        let image = Image { tag: tag.into() };
        docker_ok(&["build", "-q", "-f", f, "-t", tag, &c]);
        image
    }

    /// Size in bytes, as `docker images` counts it.
    pub fn size(&self) -> u64 {
        docker_ok(&["image", "inspect", "-f", "{{.Size}}", &self.tag])
            .parse()
            .unwrap()
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.tag]);
    }
}

/// A container run for one test. On drop its log is saved to the lab's log
/// directory (`<label>.log`, shown by the lab on failure) and it is removed.
pub struct Container {
    pub name: String,
    log: PathBuf,
}

impl Container {
    /// `docker run -d --name <lab base>-<label> ARGS`.
    pub fn run(lab: &Lab, label: &str, args: &[&str]) -> Container {
        let name = format!("{}-{label}", lab.base);
        let c = Container {
            log: lab.path(&format!("{label}.log")),
            name,
        };
        let mut v = vec!["run", "-d", "--name", c.name.as_str()];
        v.extend_from_slice(args);
        docker_ok(&v);
        c
    }

    /// The host pid of the container's first process.
    pub fn pid(&self) -> i32 {
        docker_ok(&["inspect", "-f", "{{.State.Pid}}", &self.name])
            .parse()
            .unwrap()
    }

    /// `docker inspect -f FORMAT`.
    pub fn inspect(&self, format: &str) -> String {
        docker_ok(&["inspect", "-f", format, &self.name])
    }

    /// stdout and stderr of the container so far.
    pub fn logs(&self) -> String {
        let o = docker(&["logs", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = fs::write(&self.log, self.logs());
        let _ = docker(&["rm", "-f", &self.name]);
    }
}

#[cfg(test)]
mod tests {
    use super::has_interp;

    /// The test binary itself is dynamic (cargo's default); a truncated or
    /// foreign file is no ELF.
    #[test]
    fn interp_of_this_binary() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(has_interp(&me), Some(true));
        assert_eq!(has_interp(b"#!/bin/sh\n"), None);
        assert_eq!(has_interp(&me[..0x30]), None);
    }
}
