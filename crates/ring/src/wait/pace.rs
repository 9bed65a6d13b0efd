//! How a waiting end spends the time on an empty ring: spin, sleep, or sleep and then spin,
//! decided from the gaps it has seen between messages. One piece shared by [`Consumer`],
//! [`Selector`] and, for its first nap, the async reactor.
//!
//! A fixed spin is the wrong price for most feeds: a feed whose messages land a few hundred
//! microseconds apart keeps a fixed-window consumer spinning most of the time, and one a
//! millisecond apart has it spin a whole window for nothing before every sleep. The adaptive
//! pace keeps the last [`HISTORY`] waits (from finding the ring empty to the message landing)
//! and plans the next wait from them:
//!
//! - **Spin where the next message is likely.** The spin ends an eighth past the 95th
//!   percentile of the recent waits and starts no earlier than the 35th, at most the spin
//!   window long; a wait that has
//!   to reach that span first sleeps until it (a planned nap, the producer's wake still ends
//!   it early). A message that lands in the span is caught within a pause; one that lands
//!   before it wakes the sleeper as any other.
//! - **Sleep at once** when that span is wider than twice the window: the spin would catch
//!   too few messages to pay for itself; and when it starts more than
//!   [`LONGEST_NAP_BEFORE_SPIN`] into the wait: a nap's timer wake plus a spin across its slack
//!   then cost more than the producer's wake, for a gain of tens of microseconds on a gap of a
//!   millisecond or more.
//! - **Nap to the feed.** The first nap lasts one and a half times the 95th percentile of the
//!   recent waits (at least [`FIRST_NAP`], at most [`MAX_NAP`]), so a message 10 ms away ends
//!   one sleep instead of two; a lost wake (upstream's producer has a window) costs at most
//!   that nap.
//!
//! Until [`WARM_UP`] waits are seen, and under [`SpinPolicy::Fixed`], the pace is the fixed
//! one: spin the whole window, then naps from [`FIRST_NAP`].
//!
//! [`SpinPolicy::Frugal`] never spins: every wait sleeps at once, its first nap sized to the
//! feed as above once the history is warm (from [`FIRST_NAP`] before). One futex sleep per
//! message, ended by the producer's wake: the least CPU a sparse feed can cost, for the
//! latency of a wake-up.
//!
//! [`Consumer`]: crate::Consumer
//! [`Selector`]: crate::Selector

use std::time::Duration;

use crate::wait::{FIRST_NAP, MAX_NAP};

/// How a waiting end decides its spin before it sleeps (see the module docs of `wait::pace`
/// in the source, and `docs/performance.md` for the measurements that chose the rules).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpinPolicy {
    /// Spin the whole spin window every time the ring runs dry, then sleep (upstream's way):
    /// the lowest latency for a feed that keeps landing within the window, and a core's worth
    /// of CPU for one that lands just past it.
    Fixed,
    /// The default. Learn the gaps between messages: spin only across the part of a gap where
    /// the next message is likely (sleeping before it), sleep at once when messages are too
    /// spread out for a spin to catch them, and size the first nap to the feed. Until it has
    /// seen a few waits it spins as [`SpinPolicy::Fixed`] does.
    #[default]
    Adaptive,
    /// Never spin: sleep at once on an empty ring, the first nap sized to the feed as
    /// `Adaptive` sizes it. The least CPU per message (one futex sleep, ended by the
    /// producer's wake), each message paying a wake-up's latency.
    Frugal,
}

/// Waits remembered.
pub(crate) const HISTORY: usize = 32;
/// Waits seen before the adaptive pace trusts its history.
pub(crate) const WARM_UP: usize = 8;
/// A planned nap shorter than this is not taken: the spin starts at once. A sleep's wake-up
/// costs about as much CPU as this much spinning, and the kernel's timer slack (50 µs for a
/// normal thread) makes shorter naps end late.
const SHORTEST_PLANNED_NAP: Duration = Duration::from_micros(100);
/// A span that starts later than this into the wait is not napped to and spun across: the wait
/// sleeps at once. Measured against iceoryx2's listener at one message per millisecond (issue
/// 23, `docs/performance.md`): napping to the span and spinning across it cost 1.48× the
/// listener's CPU for a p50 that came out at ~1 µs in some runs and ~60 µs (the nap's timer late)
/// in others; sleeping at once, 0.66× its CPU at 0.68× its p50 (7 pairs each).
const LONGEST_NAP_BEFORE_SPIN: Duration = Duration::from_micros(500);
/// A planned nap ends this much before the span it leads to, so that its lateness does not
/// carry it past the span's start: the kernel's timer slack (50 µs for a normal thread) plus
/// the halted CPU's wake. With 50 µs, a regular feed ~170 µs apart (the fan-in bench's paced
/// rows) had about half its messages land inside the nap: p50 7–12 µs, against 0.25–0.5 µs
/// with 100 µs (where that feed spins at once, as the fixed pace does); on the sparse bench's
/// feed 100 µs costs 0.47 cores against 0.37 (upstream's consumer: 0.67).
const NAP_MARGIN: Duration = Duration::from_micros(100);

/// The plan for one wait on an empty ring, measured from the moment it was found empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Sleep this long first (zero: start spinning at once). The producer's wake ends it.
    pub(crate) nap_before_spin: Duration,
    /// Then spin this long (zero: no spin).
    pub(crate) spin: Duration,
    /// Then sleep in naps starting at this one, doubling up to [`MAX_NAP`].
    pub(crate) first_nap: Duration,
}

impl Plan {
    /// The fixed pace: spin the whole `window`, then naps from [`FIRST_NAP`].
    pub(crate) fn fixed(window: Duration) -> Plan {
        Plan {
            nap_before_spin: Duration::ZERO,
            spin: window,
            first_nap: FIRST_NAP,
        }
    }
}

/// What the pace decided and how its plans turned out, counted per end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PaceStats {
    /// Waits planned to spin at once.
    pub spun_at_once: u64,
    /// Waits planned to nap before spinning (the span where the next message is likely lies
    /// ahead).
    pub napped_then_spun: u64,
    /// Waits planned to sleep at once, with no spin (messages too spread out to catch).
    pub slept_at_once: u64,
    /// Messages caught by a spin.
    pub caught_spinning: u64,
    /// Time spent spinning on an empty ring, in nanoseconds.
    pub spin_nanos: u64,
}

/// How the wait for one message ended: what a latency figure per kind of wait is keyed by
/// (see [`Consumer::last_wait`](crate::Consumer::last_wait)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitEnd {
    /// The message was there at the first look: no wait.
    #[default]
    None,
    /// Found awake: by a spin, or by the look just before a sleep.
    Spinning,
    /// It woke the sleeping consumer (a producer's wake, or the word it changed before the
    /// sleep began).
    Woken,
    /// It was found when a nap ran out: a wake lost or late, or a message that landed as the
    /// nap ended.
    NapRanOut,
}

/// The gaps an end has seen, its policy, and its counters.
#[derive(Clone, Debug)]
pub(crate) struct Pace {
    policy: SpinPolicy,
    /// The last waits, in microseconds (saturating), oldest overwritten first.
    waits_us: [u32; HISTORY],
    seen: usize,
    stats: PaceStats,
}

impl Pace {
    pub(crate) fn new(policy: SpinPolicy) -> Pace {
        Pace {
            policy,
            waits_us: [0; HISTORY],
            seen: 0,
            stats: PaceStats::default(),
        }
    }

    pub(crate) fn policy(&self) -> SpinPolicy {
        self.policy
    }

    /// Changes the policy; the history is kept (it describes the feed, not the policy).
    pub(crate) fn set_policy(&mut self, policy: SpinPolicy) {
        self.policy = policy;
    }

    pub(crate) fn stats(&self) -> PaceStats {
        self.stats
    }

    /// A wait that found a message `waited` after the ring was found empty.
    pub(crate) fn arrived_after(&mut self, waited: Duration) {
        let micros = u32::try_from(waited.as_micros()).unwrap_or(u32::MAX);
        self.waits_us[self.seen % HISTORY] = micros;
        self.seen = self.seen.wrapping_add(1);
    }

    /// A message caught by the spin.
    pub(crate) fn caught_spinning(&mut self) {
        self.stats.caught_spinning += 1;
    }

    /// Time spent spinning.
    pub(crate) fn spun_for(&mut self, spun: Duration) {
        let nanos = u64::try_from(spun.as_nanos()).unwrap_or(u64::MAX);
        self.stats.spin_nanos = self.stats.spin_nanos.saturating_add(nanos);
    }

    /// A pure-spin wait, which plans nothing (it never sleeps): counted as spun at once.
    pub(crate) fn spins_purely(&mut self) {
        self.stats.spun_at_once += 1;
    }

    /// The plan for the wait that starts now, with a spin of at most `window` (the end's spin
    /// threshold as time; zero never spins). Counted as spun at once, napped then spun, or
    /// slept at once.
    pub(crate) fn plan(&mut self, window: Duration) -> Plan {
        let plan = match self.policy {
            SpinPolicy::Adaptive if self.seen >= WARM_UP => self.adaptive(window),
            // A zero window is the adaptive plan's "sleep at once", first nap to the feed.
            SpinPolicy::Frugal if self.seen >= WARM_UP => self.adaptive(Duration::ZERO),
            SpinPolicy::Frugal => Plan::fixed(Duration::ZERO),
            SpinPolicy::Fixed | SpinPolicy::Adaptive => Plan::fixed(window),
        };
        let counter = if plan.spin.is_zero() {
            &mut self.stats.slept_at_once
        } else if plan.nap_before_spin.is_zero() {
            &mut self.stats.spun_at_once
        } else {
            &mut self.stats.napped_then_spun
        };
        *counter += 1;
        plan
    }

    /// The adaptive plan from the remembered waits.
    fn adaptive(&self, window: Duration) -> Plan {
        let mut waits = self.waits_us;
        let waits = &mut waits[..self.seen.min(HISTORY)];
        waits.sort_unstable();
        let quantile = |q: f64| {
            let index = ((waits.len() as f64 * q) as usize).min(waits.len() - 1);
            Duration::from_micros(u64::from(waits[index]))
        };
        let (early, late) = (quantile(0.35), quantile(0.95));
        // Half again the 95th percentile: a nap as long as the gap itself would run out just
        // before the message half the time, two sleeps for one message.
        let first_nap = (late + late / 2).clamp(FIRST_NAP, MAX_NAP);
        if window.is_zero() || late.saturating_sub(early) > window * 2 {
            return Plan {
                nap_before_spin: Duration::ZERO,
                spin: Duration::ZERO,
                first_nap,
            };
        }
        // Spin until a little past the 95th percentile, at most `window` long, from no
        // earlier than the 35th.
        let end = late + late / 8;
        let start = early.max(end.saturating_sub(window));
        if start > LONGEST_NAP_BEFORE_SPIN {
            // Far enough off that the nap and the spin cost more than a wake: sleep.
            return Plan {
                nap_before_spin: Duration::ZERO,
                spin: Duration::ZERO,
                first_nap,
            };
        }
        let nap_before_spin = start.saturating_sub(NAP_MARGIN);
        let nap_before_spin = if nap_before_spin < SHORTEST_PLANNED_NAP {
            Duration::ZERO
        } else {
            nap_before_spin
        };
        let spin = end.saturating_sub(nap_before_spin).min(window);
        Plan {
            nap_before_spin,
            spin,
            first_nap,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The policy's decisions, by counting: fed a history of waits, what plan does it make?
    use super::*;

    const WINDOW: Duration = Duration::from_micros(370);

    fn fed(policy: SpinPolicy, waits_us: impl IntoIterator<Item = u64>) -> Pace {
        let mut pace = Pace::new(policy);
        for wait in waits_us {
            pace.arrived_after(Duration::from_micros(wait));
        }
        pace
    }

    /// Waits spread evenly over `lo..=hi` µs, `n` of them.
    fn even(lo: u64, hi: u64, n: u64) -> impl Iterator<Item = u64> {
        (0..n).map(move |i| lo + (hi - lo) * i / (n - 1))
    }

    #[test]
    fn a_fast_feed_is_met_with_a_spin_at_once_and_a_slow_one_with_a_sleep_at_once() {
        // Messages every 10-60 µs: spin at once, past the slowest recent wait.
        let mut fast = fed(SpinPolicy::Adaptive, even(10, 60, 32));
        for _ in 0..100 {
            let plan = fast.plan(WINDOW);
            assert_eq!(plan.nap_before_spin, Duration::ZERO, "{plan:?}");
            assert!(plan.spin >= Duration::from_micros(58), "{plan:?}");
            assert!(plan.spin <= WINDOW, "{plan:?}");
        }
        // Messages 5-50 ms apart: no spin can catch them; sleep at once, first nap to the feed.
        let mut slow = fed(SpinPolicy::Adaptive, even(5_000, 50_000, 32));
        for _ in 0..100 {
            let plan = slow.plan(WINDOW);
            assert_eq!(plan.spin, Duration::ZERO, "{plan:?}");
            assert!(plan.first_nap >= Duration::from_millis(40), "{plan:?}");
        }
        let (fast, slow) = (fast.stats(), slow.stats());
        assert_eq!((fast.spun_at_once, fast.slept_at_once), (100, 0));
        assert_eq!((slow.spun_at_once, slow.slept_at_once), (0, 100));
        assert_eq!(fast.napped_then_spun + slow.napped_then_spun, 0);
    }

    #[test]
    fn a_regular_feed_past_the_window_naps_then_spins_across_the_likely_span() {
        // A message every 400 µs, give or take 20: nap most of the gap, spin across its likely
        // end, and a first nap that outlasts the gap (one sleep per message).
        let mut pace = fed(SpinPolicy::Adaptive, even(380, 420, 32));
        let plan = pace.plan(WINDOW);
        assert!(
            plan.nap_before_spin > Duration::from_micros(250)
                && plan.nap_before_spin < Duration::from_micros(380),
            "{plan:?}"
        );
        assert!(
            plan.nap_before_spin + plan.spin > Duration::from_micros(420),
            "{plan:?}"
        );
        assert!(plan.spin <= WINDOW, "{plan:?}");
        assert_eq!(plan.first_nap, FIRST_NAP, "{plan:?}");
        assert_eq!(pace.stats().napped_then_spun, 1);
    }

    #[test]
    fn a_span_further_off_than_the_longest_nap_before_a_spin_is_slept_to() {
        // A message every millisecond: napping to it and spinning across the timer's slack
        // costs more than the producer's wake, so the wait sleeps at once.
        let plan = fed(SpinPolicy::Adaptive, even(980, 1_020, 32)).plan(WINDOW);
        assert_eq!(
            (plan.nap_before_spin, plan.spin),
            (Duration::ZERO, Duration::ZERO),
            "{plan:?}"
        );
        // The boundary: a span that starts exactly at the longest nap is napped to and spun.
        let at = LONGEST_NAP_BEFORE_SPIN.as_micros() as u64;
        let plan = fed(SpinPolicy::Adaptive, [at; 32]).plan(WINDOW);
        assert!(!plan.spin.is_zero(), "{plan:?}");
        assert_eq!(plan.nap_before_spin, LONGEST_NAP_BEFORE_SPIN - NAP_MARGIN);
        let plan = fed(SpinPolicy::Adaptive, [at + 1; 32]).plan(WINDOW);
        assert_eq!(plan.spin, Duration::ZERO, "{plan:?}");
    }

    #[test]
    fn the_sparse_bench_feed_spins_across_its_later_span_only() {
        // The bench's gaps, 20-600 µs: wider than the window, narrower than twice it. The
        // spin covers the span up to about the 95th percentile, at most a window long, after a
        // nap that ends a margin before the span.
        let mut pace = fed(SpinPolicy::Adaptive, even(20, 600, 32));
        let plan = pace.plan(WINDOW);
        assert_eq!(plan.spin, WINDOW, "{plan:?}");
        assert!(
            plan.nap_before_spin >= Duration::from_micros(150),
            "{plan:?}"
        );
        assert!(
            plan.nap_before_spin + plan.spin >= Duration::from_micros(540),
            "{plan:?}"
        );
    }

    #[test]
    fn fixed_or_cold_or_zero_window_keeps_the_fixed_pace() {
        let mut fixed = fed(SpinPolicy::Fixed, even(5_000, 50_000, 32));
        assert_eq!(fixed.plan(WINDOW), Plan::fixed(WINDOW));
        let mut cold = fed(
            SpinPolicy::Adaptive,
            even(5_000, 50_000, WARM_UP as u64 - 1),
        );
        assert_eq!(cold.plan(WINDOW), Plan::fixed(WINDOW));
        cold.arrived_after(Duration::from_millis(30));
        assert_eq!(cold.plan(WINDOW).spin, Duration::ZERO, "warm now");
        let mut zero = fed(SpinPolicy::Adaptive, even(10, 60, 32));
        assert_eq!(zero.plan(Duration::ZERO).spin, Duration::ZERO);
    }

    #[test]
    fn the_history_forgets_a_feed_that_changed() {
        let mut pace = fed(SpinPolicy::Adaptive, even(5_000, 50_000, 32));
        assert_eq!(pace.plan(WINDOW).spin, Duration::ZERO);
        for wait in even(10, 60, HISTORY as u64) {
            pace.arrived_after(Duration::from_micros(wait));
        }
        let plan = pace.plan(WINDOW);
        assert_eq!(plan.nap_before_spin, Duration::ZERO, "{plan:?}");
        assert!(!plan.spin.is_zero(), "{plan:?}");
    }

    #[test]
    fn a_frugal_pace_never_spins_and_sizes_its_first_nap_to_the_feed() {
        // Cold: no spin, naps from the fixed first one.
        let mut pace = fed(SpinPolicy::Frugal, even(980, 1_020, WARM_UP as u64 - 1));
        assert_eq!(pace.plan(WINDOW), Plan::fixed(Duration::ZERO));
        // Warm, whatever the feed: sleep at once, the first nap past the 95th percentile wait
        // (one sleep per message at a 1 ms feed, where the adaptive pace would nap then spin).
        for feed in [
            even(980, 1_020, 32).collect::<Vec<_>>(),
            even(10, 60, 32).collect(),
        ] {
            let mut pace = fed(SpinPolicy::Frugal, feed.iter().copied());
            let plan = pace.plan(WINDOW);
            assert_eq!(plan.spin, Duration::ZERO, "{plan:?}");
            assert_eq!(plan.nap_before_spin, Duration::ZERO, "{plan:?}");
            assert!(
                plan.first_nap >= Duration::from_micros(feed[feed.len() - 1]),
                "{plan:?}"
            );
            assert_eq!(pace.stats().slept_at_once, 1);
        }
        let mut regular = fed(SpinPolicy::Frugal, even(980, 1_020, 32));
        assert!(regular.plan(WINDOW).first_nap >= Duration::from_micros(1_500));
    }

    /// Killers of the mutants `cargo mutants` left alive in this module (docs/reliability.md):
    /// the boundaries of "sleep at once", the first nap's size, the counters.
    #[test]
    fn sleep_at_once_starts_just_past_two_windows_of_spread_and_past_the_longest_nap() {
        // Spread of exactly two windows (35th percentile 20 µs, 95th 760 µs): still spun.
        let at_the_edge = (0..32).map(|i| if i < 12 { 20 } else { 760 });
        let plan = fed(SpinPolicy::Adaptive, at_the_edge).plan(WINDOW);
        assert!(!plan.spin.is_zero(), "{plan:?}");
        // 1-3 ms gaps: a spread past two windows, well inside the longest nap: sleep at once.
        let plan = fed(SpinPolicy::Adaptive, even(1_000, 3_000, 32)).plan(WINDOW);
        assert_eq!(plan.spin, Duration::ZERO, "{plan:?}");
        assert_eq!(plan.nap_before_spin, Duration::ZERO, "{plan:?}");
        // A regular feed 60 ms apart: a narrow spread, but further off than a nap before a spin
        // may last.
        let plan = fed(SpinPolicy::Adaptive, even(59_900, 60_100, 32)).plan(WINDOW);
        assert_eq!(plan.spin, Duration::ZERO, "{plan:?}");
        assert_eq!(plan.nap_before_spin, Duration::ZERO, "{plan:?}");
    }

    #[test]
    fn a_zero_window_sleeps_at_once_without_a_nap_before_it() {
        // A spread-out feed, and one with no spread at all (whose span would otherwise be
        // napped to): a zero window never spins and never naps first.
        for feed in [even(980, 1_020, 32).collect::<Vec<_>>(), vec![300; 32]] {
            let plan = fed(SpinPolicy::Adaptive, feed).plan(Duration::ZERO);
            assert_eq!(
                (plan.nap_before_spin, plan.spin),
                (Duration::ZERO, Duration::ZERO),
                "{plan:?}"
            );
        }
    }

    #[test]
    fn a_planned_nap_shorter_than_the_shortest_is_not_taken() {
        // Waits of 200 µs: the nap before the spin is 200 - 100 = 100 µs, the shortest taken.
        let plan = fed(SpinPolicy::Adaptive, [200; 32]).plan(WINDOW);
        assert_eq!(plan.nap_before_spin, SHORTEST_PLANNED_NAP, "{plan:?}");
        // Waits of 150 µs: a 50 µs nap is not worth its wake-up; the spin starts at once.
        let plan = fed(SpinPolicy::Adaptive, [150; 32]).plan(WINDOW);
        assert_eq!(plan.nap_before_spin, Duration::ZERO, "{plan:?}");
        assert!(plan.spin >= Duration::from_micros(168), "{plan:?}");
    }

    #[test]
    fn the_first_nap_is_half_again_the_95th_percentile() {
        let plan = fed(SpinPolicy::Adaptive, even(9_800, 10_200, 32)).plan(WINDOW);
        // 95th percentile 10,187 µs: half again is 15,280 µs.
        assert!(
            plan.first_nap >= Duration::from_micros(15_250)
                && plan.first_nap <= Duration::from_micros(15_300),
            "{plan:?}"
        );
        // A feed whose half-again is shorter than the fixed first nap keeps the fixed one.
        let plan = fed(SpinPolicy::Adaptive, even(980, 1_020, 32)).plan(WINDOW);
        assert_eq!(plan.first_nap, FIRST_NAP, "{plan:?}");
    }

    #[test]
    fn the_policy_is_kept_and_each_catch_counted_once() {
        let mut pace = Pace::new(SpinPolicy::Fixed);
        pace.set_policy(SpinPolicy::Adaptive);
        assert_eq!(pace.policy(), SpinPolicy::Adaptive);
        pace.set_policy(SpinPolicy::Frugal);
        assert_eq!(pace.policy(), SpinPolicy::Frugal);
        pace.caught_spinning();
        pace.caught_spinning();
        assert_eq!(pace.stats().caught_spinning, 2);
    }
}
