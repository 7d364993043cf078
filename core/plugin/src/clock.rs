//! Clock reads for the plugin thread's hot paths. A precise monotonic read
//! can be a syscall plus a trap to the hypervisor (HPET clocksource in a
//! VM: measured there as the largest single cost of a check); the coarse
//! clock is the same clock at tick resolution (1-4 ms), read in the vDSO
//! without either. Deadlines of seconds and a CPU slice of 100 ms do not
//! need better.

use std::sync::OnceLock;
use std::time::Duration;

/// CLOCK_MONOTONIC_COARSE.
pub(crate) fn coarse_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// "Now" for timer deadlines, from the coarse clock: one precise read at
/// first use anchors it. Within a tick of the precise clock (CLOCK_MONOTONIC
/// and its coarse variant are the same clock), so a deadline is off by at
/// most a tick.
pub(crate) fn now() -> tokio::time::Instant {
    static ANCHOR: OnceLock<(tokio::time::Instant, Duration)> = OnceLock::new();
    let (at, coarse) = *ANCHOR.get_or_init(|| (tokio::time::Instant::now(), coarse_now()));
    at + coarse_now().saturating_sub(coarse)
}
