//! What this process has cost so far: CPU seconds and context switches, read with
//! `getrusage`. Shared by the fan-in and idle measurements.

/// The process's CPU seconds (every thread, user and system) and context switches so far.
pub fn usage() -> (f64, u64) {
    // SAFETY: getrusage fills the struct we pass, which lives across the call.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        seconds(usage.ru_utime) + seconds(usage.ru_stime),
        (usage.ru_nvcsw + usage.ru_nivcsw) as u64,
    )
}
