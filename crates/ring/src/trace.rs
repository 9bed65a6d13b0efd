//! Lifecycle events: through `tracing` with the `tracing` feature, compiled out without it.
//! Only points a service operator acts on are events (listening, a peer connected, refused
//! or gone, corruption found); nothing on the per-message path. The events' own test, which
//! needs a whole bus, is the top-floor `trace_events` module.

/// `lifecycle!(info, pid = 1, "peer connected")`: a `tracing` event of that level, target
/// `tachyon_ring`, when the feature is on. When it is off, nothing runs, but every field and
/// format argument is still named (in code that never executes), so a variable that only an
/// event reads raises no unused-variable warning and callers need no `let _ = …;`.
macro_rules! lifecycle {
    ($level:ident, $($event:tt)+) => {
        #[cfg(feature = "tracing")]
        ::tracing::$level!(target: "tachyon_ring", $($event)+);
        #[cfg(not(feature = "tracing"))]
        $crate::trace::absorb!($($event)+);
    };
}

/// The disabled arm of [`lifecycle!`]: walks the event's fields (`name`, `name = value`,
/// `name = %value`, `name = ?value`) and then its message (a format string and arguments),
/// naming each inside `if false`, so nothing is evaluated and nothing is moved.
#[cfg(not(feature = "tracing"))]
macro_rules! absorb {
    ($message:literal $(, $argument:expr)* $(,)?) => {
        if false {
            let _ = ::std::format_args!($message $(, $argument)*);
        }
    };
    ($name:ident = % $value:expr, $($rest:tt)+) => {
        if false {
            let _ = &$value;
        }
        $crate::trace::absorb!($($rest)+);
    };
    ($name:ident = ? $value:expr, $($rest:tt)+) => {
        if false {
            let _ = &$value;
        }
        $crate::trace::absorb!($($rest)+);
    };
    ($name:ident = $value:expr, $($rest:tt)+) => {
        if false {
            let _ = &$value;
        }
        $crate::trace::absorb!($($rest)+);
    };
    ($name:ident, $($rest:tt)+) => {
        if false {
            let _ = &$name;
        }
        $crate::trace::absorb!($($rest)+);
    };
}

#[cfg(not(feature = "tracing"))]
pub(crate) use absorb;
pub(crate) use lifecycle;
