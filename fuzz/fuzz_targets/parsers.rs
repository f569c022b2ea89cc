//! The duration, signal and rewrite parsers take any text without panicking,
//! and what they accept shows back as something they accept.
#![no_main]

use drainit::duration::{self, Human};
use drainit::signal::{Rewrite, Signal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = duration::parse(text) {
        let shown = Human(d).to_string();
        assert_eq!(duration::parse(&shown), Ok(d), "{text:?} shows as {shown:?}");
    }
    if let Some(signal) = Signal::parse(text) {
        let _ = signal.to_string();
    }
    if let Ok(rewrite) = Rewrite::parse(text) {
        let _ = rewrite.to_string();
    }
});
